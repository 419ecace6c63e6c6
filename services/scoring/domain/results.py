"""What replaying a lead's timeline finds: where it stands, and the stages it reached."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from services.scoring.domain.model import Reason


@dataclass(frozen=True)
class StageReached:
    """The lead entered `stage` (from `previous`) because of the interaction `event_id`.

    `cycle` counts the returns to nurture before it: a lead may climb the funnel again
    after sales sent it back, and each climb reports its stages anew.
    """

    stage: str
    previous: str | None
    time: float
    event_id: str | None
    score: float
    grade: str
    reason: str
    cycle: int = 0
    # What was known of the person at that moment: what the hand-off carries to the router.
    profile: Mapping[str, Any] = field(default_factory=dict, compare=False)
    campaigns: tuple[str, ...] = field(default=(), compare=False)
    source_channel: str | None = field(default=None, compare=False)
    # On a hand-off: the rules that gave the most points then (see `domain.reasons`).
    reasons: tuple[Reason, ...] = field(default=(), compare=False)
    # Every named score then: key -> value.
    scores: Mapping[str, float] = field(default_factory=dict, compare=False)

    @property
    def report_key(self) -> str:
        """What identifies this stage entry among everything reported of the lead."""
        return f"{self.cycle}:{self.stage}"


def rounded_scores(scores: Mapping[str, float]) -> dict[str, float]:
    """Named scores as shown and sent: to three decimals, as the main score is."""
    return {key: round(value, 3) for key, value in scores.items()}


@dataclass(frozen=True)
class NamedScoreResult:
    """A named score as of a moment, with the same breakdown as the main score."""

    key: str
    name: str
    score: float
    engagement: float
    fit: float
    thresholds_met: frozenset[float]
    points_by_rule: Mapping[str, float] = field(default_factory=dict)
    decayed_by_rule: Mapping[str, float] = field(default_factory=dict)
    fit_by_rule: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Evaluation:
    score: float
    engagement: float
    fit: float
    grade: str
    stage: str | None
    stages_reached: tuple[StageReached, ...]
    thresholds_met: frozenset[float]
    last_event_time: float | None
    profile: Mapping[str, Any]
    points_by_rule: Mapping[str, float] = field(default_factory=dict)
    decayed_by_rule: Mapping[str, float] = field(default_factory=dict)
    fit_by_rule: Mapping[str, float] = field(default_factory=dict)
    hand_off_blocked_until: float | None = None
    cycle: int = 0
    campaigns: tuple[str, ...] = ()
    source_channel: str | None = None
    # The named scores, in the order the definitions declare them.
    named_scores: tuple[NamedScoreResult, ...] = ()

    @property
    def scores(self) -> dict[str, float]:
        """Every named score's value: key -> score."""
        return {named.key: named.score for named in self.named_scores}

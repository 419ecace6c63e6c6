"""Replaying a lead's history: its score, fit, grade and the stages it reached, as of a moment."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from services.scoring.domain.history import (
    RETURNED,
    Return,
    StoredInteraction,
    time_of,
    with_returns,
)
from services.scoring.domain.model import Reason, ScoringModel


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

    @property
    def report_key(self) -> str:
        """What identifies this stage entry among everything reported of the lead."""
        return f"{self.cycle}:{self.stage}"


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


_by_event_time = attrgetter("time", "event_id")


def evaluate(
    model: ScoringModel,
    interactions: Sequence[StoredInteraction],
    as_of: float,
    *,
    returns: Sequence[Return] = (),
    explain: bool = False,
) -> Evaluation:
    """Score a lead: replay its interactions in event-time order up to `as_of`.

    Behaviour points decay with the half-life from each interaction's own time; a rule's
    cap limits the points it gives in any window; fit points come from the latest known
    contact fields. The stage is the furthest one the lead ever qualified for (stages do
    not move backwards when points decay), and never beyond the hand-off. When sales
    returned the lead, it starts climbing again from the stage it was returned to, and
    may not be handed off again before its cool-off ends (a disqualified lead, never).
    """
    timeline: list[Any] = sorted(interactions, key=_by_event_time)
    if returns:
        timeline = with_returns(timeline, returns)
    if timeline and time_of(timeline[-1]) > as_of:
        timeline = [item for item in timeline if time_of(item) <= as_of]
    replay = _Replay(model, as_of, explain)
    for item in timeline:
        if type(item) is StoredInteraction:
            replay.decay_to(item.time)
            replay.climb(item.time, replay.interact(item), item.event_id)
        else:
            time, kind, sent_back = item
            replay.decay_to(time)
            if kind == RETURNED:
                replay.send_back(sent_back)
            else:
                replay.climb(time, -1, None)
    return replay.result()


class _Replay:
    """The state of one lead while its history is replayed."""

    def __init__(self, model: ScoringModel, as_of: float, explain: bool) -> None:
        self.model = model
        self.as_of = as_of
        self.explain = explain
        self.engagement = 0.0
        self.last_time: float | None = None
        self.profile: dict[str, Any] = {}
        self.campaigns: set[str] = set()
        self.source_channel: str | None = None
        self.fit, self.fit_by_rule = model.fit(self.profile)
        self.stage = -1
        self.cycle = 0
        self.returned_to: str | None = None
        self.blocked_until = -math.inf
        self.reached: list[StageReached] = []
        self.awarded: dict[int, _CapWindow] = {}
        self.points_by_rule: dict[str, float] = {}
        self.decayed_by_rule: dict[str, float] = {}

    def decay_to(self, now: float) -> None:
        if self.last_time is not None:
            self.engagement = self.model.decay(self.engagement, now - self.last_time)
        self.last_time = now

    def _stage_key(self) -> str | None:
        return self.model.stage_keys[self.stage] if self.stage >= 0 else self.returned_to

    def interact(self, interaction: StoredInteraction) -> int:
        """Add the interaction's points; answer the stage it enters directly (-1: none)."""
        if self.source_channel is None:
            self.source_channel = interaction.channel
        if interaction.campaign:
            self.campaigns.add(interaction.campaign)
        if interaction.profile:
            self.profile.update(
                {k: v for k, v in interaction.profile.items() if v not in (None, "")}
            )
            self.fit, self.fit_by_rule = self.model.fit(self.profile)
        entry_stage = -1
        for hit in self.model.hits(interaction):
            points = hit.points
            if hit.cap_points is not None:
                window = self.awarded.get(hit.rule)
                if window is None:
                    window = self.awarded[hit.rule] = _CapWindow()
                points = window.allow(hit.cap_points, hit.cap_window, interaction.time, points)
            self.engagement += points
            if hit.entry_stage is not None and hit.entry_stage > entry_stage:
                entry_stage = hit.entry_stage
            if self.explain and hit.rule >= 0 and points:
                self._explain(hit.rule, points, interaction.time)
        return entry_stage

    def _explain(self, rule: int, points: float, time: float) -> None:
        key = self.model.definitions.scoring.rules[rule].key
        self.points_by_rule[key] = self.points_by_rule.get(key, 0.0) + points
        decayed = self.model.decay(points, self.as_of - time)
        self.decayed_by_rule[key] = self.decayed_by_rule.get(key, 0.0) + decayed

    def climb(self, now: float, entry_stage: int, event_id: str | None) -> None:
        """Move to the furthest stage the lead now qualifies for, if it is further."""
        model = self.model
        highest = model.hand_off if now >= self.blocked_until else model.hand_off - 1
        entry_stage = min(entry_stage, highest)
        score = self.engagement + self.fit
        above = max(self.stage, entry_stage)
        qualifying = (
            model.qualifying_stage(score, self.fit, self.profile, above, highest)
            if score >= model.score_needed_past[above + 1]
            else None
        )
        candidate = max(entry_stage, qualifying if qualifying is not None else -1)
        if candidate > self.stage:
            # A lead that skips stages is counted as having passed them at that moment, so
            # each stage of the funnel counts every lead that went beyond it.
            for passed in model.passed_through(self.stage, candidate):
                self._reach(model.stage_keys[passed], now, event_id, "passed_through")
                self.stage = passed
            reason = "criteria" if candidate == qualifying else "entry_stage"
            self._reach(model.stage_keys[candidate], now, event_id, reason)
            self.stage = candidate

    def send_back(self, sent_back: Return) -> None:
        self._reach(sent_back.stage, sent_back.time, sent_back.event_id, "returned")
        self.stage, self.returned_to = -1, sent_back.stage
        self.cycle += 1
        eligible = sent_back.eligible_again
        self.blocked_until = eligible if eligible is not None else math.inf
        if sent_back.resets_score:
            self.engagement = 0.0
            self.awarded.clear()
            self.points_by_rule.clear()
            self.decayed_by_rule.clear()

    def _reach(self, stage: str, now: float, event_id: str | None, reason: str) -> None:
        score = self.engagement + self.fit
        grade = self.model.grade(score, self.fit)
        self.reached.append(
            StageReached(
                stage,
                self._stage_key(),
                now,
                event_id,
                score,
                grade,
                reason,
                self.cycle,
                dict(self.profile),
                tuple(sorted(self.campaigns)),
                self.source_channel,
            )
        )

    def result(self) -> Evaluation:
        model = self.model
        last_time = self.last_time
        engagement = (
            model.decay(self.engagement, self.as_of - last_time) if last_time is not None else 0.0
        )
        score = engagement + self.fit
        return Evaluation(
            score=score,
            engagement=engagement,
            fit=self.fit,
            grade=model.grade(score, self.fit),
            stage=self._stage_key(),
            stages_reached=tuple(self.reached),
            thresholds_met=frozenset(t for t in model.thresholds if score >= t),
            last_event_time=last_time,
            profile=self.profile,
            points_by_rule=self.points_by_rule,
            decayed_by_rule=self.decayed_by_rule,
            fit_by_rule=self.fit_by_rule if self.explain else {},
            hand_off_blocked_until=(
                self.blocked_until if math.isfinite(self.blocked_until) else None
            ),
            cycle=self.cycle,
            campaigns=tuple(sorted(self.campaigns)),
            source_channel=self.source_channel,
        )


class _CapWindow:
    """The points one capped rule gave within its window, kept as a running sum."""

    __slots__ = ("given", "history")

    def __init__(self) -> None:
        self.history: deque[tuple[float, float]] = deque()
        self.given = 0.0

    def allow(self, cap: float, window: float, time: float, points: float) -> float:
        """Points the rule may still give: its cap minus what it gave in the last window."""
        history = self.history
        while history and history[0][0] <= time - window:
            self.given -= abs(history.popleft()[1])
        room = max(cap - self.given, 0.0)
        allowed = max(min(points, room), -room)
        if allowed:
            history.append((time, allowed))
            self.given += abs(allowed)
        return allowed

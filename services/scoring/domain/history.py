"""A lead's history as scoring keeps it: its interactions and the returns from sales."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class StoredInteraction:
    """What scoring needs of one stored interaction. `time` is in epoch seconds."""

    event_id: str
    time: float
    channel: str
    type: str
    campaign: str | None = None
    url: str | None = None
    asset: str | None = None
    network: str | None = None
    profile: Mapping[str, Any] | None = None

    @property
    def order(self) -> tuple[float, str]:
        return (self.time, self.event_id)


@dataclass(frozen=True, slots=True)
class Return:
    """Sales sent the lead back to marketing at `time` (epoch seconds)."""

    event_id: str
    time: float
    stage: str
    resets_score: bool
    eligible_again: float | None  # None: never handed off again (disqualified)


# The two kinds of moment a return puts on the timeline; a return sorts before a cool-off end.
RETURNED = 0
_ELIGIBLE_AGAIN = 1


def moments_of(returns: Iterable[Return]) -> list[tuple[float, int, Return]]:
    """The moments sales returned the lead, and when each cool-off ends."""
    moments: list[tuple[float, int, Return]] = []
    for sent_back in returns:
        moments.append((sent_back.time, RETURNED, sent_back))
        if sent_back.eligible_again is not None:
            moments.append((sent_back.eligible_again, _ELIGIBLE_AGAIN, sent_back))
    return moments

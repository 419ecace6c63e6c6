"""A lead's history as scoring keeps it: its interactions and the returns from sales."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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


def time_of(item: Any) -> float:
    return float(item.time if type(item) is StoredInteraction else item[0])


def with_returns(interactions: list[StoredInteraction], returns: Sequence[Return]) -> list[Any]:
    """The interactions, the moments sales returned the lead, and when each cool-off ends."""
    moments: list[tuple[float, int, Return]] = []
    for sent_back in returns:
        moments.append((sent_back.time, RETURNED, sent_back))
        if sent_back.eligible_again is not None:
            moments.append((sent_back.eligible_again, _ELIGIBLE_AGAIN, sent_back))
    moments.sort(key=lambda moment: (moment[0], moment[1], moment[2].event_id))
    merged: list[Any] = []
    position = 0
    for interaction in interactions:
        while position < len(moments) and moments[position][0] <= interaction.time:
            merged.append(moments[position])
            position += 1
        merged.append(interaction)
    merged.extend(moments[position:])
    return merged

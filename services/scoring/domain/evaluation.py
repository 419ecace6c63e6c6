"""Replaying a lead's history: its score, fit, grade and the stages it reached, as of a moment."""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter

from services.scoring.domain.history import Return, StoredInteraction
from services.scoring.domain.model import ScoringModel
from services.scoring.domain.results import Evaluation
from services.scoring.domain.timeline import Replay

_by_event_time = attrgetter("time", "event_id")


def replay_history(
    model: ScoringModel,
    interactions: Sequence[StoredInteraction],
    as_of: float,
    *,
    returns: Sequence[Return] = (),
    explain: bool = False,
) -> Replay:
    """Replay a lead's interactions and returns in event-time order up to `as_of`.

    Behaviour points decay with the half-life from each interaction's own time; a rule's
    cap limits the points it gives in any window; fit points come from the latest known
    contact fields. The stage is the furthest one the lead ever qualified for (stages do
    not move backwards when points decay), and never beyond the hand-off. When sales
    returned the lead, it starts climbing again from the stage it was returned to, and
    may not be handed off again before its cool-off ends (a disqualified lead, never).
    With `explain`, it keeps each rule's points, and a hand-off carries its reasons.
    """
    replay = Replay(model, explain)
    if returns:
        replay.schedule(returns)
    for interaction in sorted(interactions, key=_by_event_time):
        if interaction.time > as_of:
            break
        replay.feed(interaction)
    replay.settle(as_of)
    return replay


def evaluate(
    model: ScoringModel,
    interactions: Sequence[StoredInteraction],
    as_of: float,
    *,
    returns: Sequence[Return] = (),
    explain: bool = False,
) -> Evaluation:
    """Score a lead as of `as_of` from its whole history (see `replay_history`)."""
    replay = replay_history(model, interactions, as_of, returns=returns, explain=explain)
    return replay.result(as_of)

"""Scoring a lead when something happened to it: from its saved state when its new
interactions simply follow its history, else by replaying all of it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from services.scoring.domain.decay import score_as_of
from services.scoring.domain.evaluation import replay_history
from services.scoring.domain.history import Return, StoredInteraction
from services.scoring.domain.lifecycle import (
    FunnelChanges,
    StoredLead,
    arrival_checkpoints,
    lifecycle_changes,
    named_thresholds_reported,
)
from services.scoring.domain.model import ScoringModel
from services.scoring.domain.results import Evaluation, StageReached
from services.scoring.domain.timeline import STATE_FORMAT, Replay


@dataclass(frozen=True)
class Scored:
    """The lead as of now, what the funnel has not been told of it, and its timeline's state
    to go on from next time."""

    evaluation: Evaluation
    changes: FunnelChanges
    state: Mapping[str, Any]


def _scored(replay: Replay, evaluation: Evaluation, changes: FunnelChanges) -> Scored:
    """The state saved also holds the named scores as evaluated, for lists of leads."""
    return Scored(evaluation, changes, replay.snapshot() | {"scores": evaluation.scores})


def _going_on(model: ScoringModel, version: str, previous: StoredLead | None) -> Replay | None:
    """The lead's timeline where it was saved; None if it was not saved under `version`."""
    if (
        previous is not None
        and previous.definitions_version is None
        and not (previous.state or previous.interaction_count or previous.reported)
    ):
        return Replay(model, explain=True)  # never scored: there is nothing to replay
    if (
        previous is None
        or previous.state is None
        or previous.state.get("format") != STATE_FORMAT
        or previous.reported is None
        or previous.definitions_version != version
    ):
        return None
    return Replay.restore(model, previous.state)


def _settled(replay: Replay, now: float) -> tuple[Replay, float]:
    """The replay moved on to now (or to its latest interaction, if dated later)."""
    as_of = max(now, replay.latest[0]) if replay.latest else now
    replay.settle(as_of)
    return replay, as_of


def explained(
    model: ScoringModel, version: str, previous: StoredLead | None, now: float
) -> Evaluation | None:
    """The lead as of `now` from its saved state, with which rule gave which points; None
    when no state was saved under these definitions."""
    replay = _going_on(model, version, previous)
    if replay is None:
        return None
    replay, as_of = _settled(replay, now)
    return replay.result(as_of)


def continue_scoring(
    model: ScoringModel,
    version: str,
    previous: StoredLead | None,
    arrived: Sequence[StoredInteraction],
    now: float,
) -> Scored | None:
    """Go on from the lead's saved state with the interactions that `arrived` (in arrival
    order): O(1) per interaction. None when only a replay of the whole history gives the
    right answer: no state saved under these definitions, or an interaction dated before
    one already scored (it may change the lead's path)."""
    replay = _going_on(model, version, previous)
    if replay is None or previous is None or previous.reported is None:
        return None
    for interaction in arrived:
        if not replay.follows(interaction):
            return None
        replay.feed(interaction)
    replay, as_of = _settled(replay, now)
    evaluation = replay.result(as_of)
    changes = lifecycle_changes(
        model, evaluation, previous.reported, previous.stage, previous.thresholds_met
    )
    return _scored(replay, evaluation, changes)


def report_arrivals(
    model: ScoringModel,
    history: Sequence[StoredInteraction],
    arrived: Sequence[str],
    now: float,
    *,
    returns: Sequence[Return] = (),
    reported: frozenset[str] = frozenset(),
    previous_stage: str | None = None,
    previous_thresholds: frozenset[float] = frozenset(),
) -> Scored:
    """Score a lead whose interactions `arrived` (ids, in arrival order; all in `history`)
    by replaying its history, and tell what that means for the funnel: every stage entry
    not reported before, in path order (a hand-off with its reasons), and the thresholds
    crossed since the lead was last stored (named scores' among `reported`)."""
    entries: list[StageReached] = []
    named_thresholds = named_thresholds_reported(reported)
    for checkpoint in arrival_checkpoints(history, arrived):
        as_of = score_as_of(now, checkpoint)
        replay = replay_history(model, checkpoint, as_of, returns=returns, explain=True)
        evaluation = replay.result(as_of)
        changes = lifecycle_changes(
            model, evaluation, reported, previous_stage, previous_thresholds
        )
        # Stage entries reported so far; thresholds crossed since the lead was last stored.
        reported = changes.reported - named_thresholds_reported(changes.reported)
        reported |= named_thresholds
        entries += changes.stages
    return _scored(replay, evaluation, replace(changes, stages=entries))


def rescore(
    model: ScoringModel,
    history: Sequence[StoredInteraction],
    returns: Sequence[Return],
    now: float,
    previous: StoredLead | None,
) -> Scored:
    """Score a lead afresh under changed definitions: only where it now stands is reported,
    a hand-off with its reasons as of its latest interaction."""
    as_of = score_as_of(now, history)
    replay = replay_history(model, history, as_of, returns=returns, explain=True)
    evaluation = replay.result(as_of)
    changes = lifecycle_changes(
        model,
        evaluation,
        named_thresholds_reported(previous.reported or frozenset()) if previous else frozenset(),
        previous.stage if previous else None,
        previous.thresholds_met if previous else frozenset(),
        rescoring=True,
    )
    hand_off = model.stage_keys[model.hand_off]
    stages = [
        replace(reached, reasons=replay.reasons(reached.time))
        if reached.stage == hand_off
        else reached
        for reached in changes.stages
    ]
    return _scored(replay, evaluation, replace(changes, stages=stages))

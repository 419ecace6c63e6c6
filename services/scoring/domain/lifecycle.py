"""What a new evaluation means for the funnel: stage entries and threshold crossings to report."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from services.scoring.domain.history import StoredInteraction
from services.scoring.domain.model import ScoringModel
from services.scoring.domain.results import Evaluation, StageReached


@dataclass(frozen=True)
class StoredLead:
    """What was last stored of a lead: where it stood and what was reported of it."""

    id: str
    stage: str | None
    thresholds_met: frozenset[float]
    # The stage entries reported so far (see `StageReached.report_key`); None for a lead
    # stored before they were kept (migration scoring_0004).
    reported: frozenset[str] | None
    interaction_count: int = 0
    # Its timeline's state (`Replay.snapshot`) under definitions `definitions_version`;
    # None for a lead stored before it was kept (migration scoring_0005).
    state: Mapping[str, Any] | None = None
    definitions_version: str | None = None


MAIN_SCORE = "score"


@dataclass(frozen=True)
class ThresholdChange:
    """`score_key`'s score (the main one, or a named one) crossed `threshold`; `score` is
    that score's value, `scores` every named score's."""

    threshold: float
    direction: str
    score: float
    grade: str
    score_key: str = MAIN_SCORE
    scores: Mapping[str, float] = field(default_factory=dict)


# A named score's threshold met is kept among what was reported of the lead, by identity:
# `threshold:<score key>:<threshold>` (stage entries are `<cycle>:<stage>`).
_NAMED_THRESHOLD = "threshold:"


def named_threshold_key(score_key: str, threshold: float) -> str:
    return f"{_NAMED_THRESHOLD}{score_key}:{threshold!r}"


def named_thresholds_reported(reported: frozenset[str]) -> frozenset[str]:
    """What `reported` holds of the named scores' thresholds met."""
    return frozenset(key for key in reported if key.startswith(_NAMED_THRESHOLD))


def _named_thresholds_met(evaluation: Evaluation) -> frozenset[str]:
    return frozenset(
        named_threshold_key(named.key, threshold)
        for named in evaluation.named_scores
        for threshold in named.thresholds_met
    )


@dataclass(frozen=True)
class FunnelChanges:
    """What a new evaluation means for the funnel, and what is then known to be reported."""

    stages: list[StageReached]
    crossings: list[ThresholdChange]
    reported: frozenset[str]
    stage: str | None


def lifecycle_changes(
    model: ScoringModel,
    evaluation: Evaluation,
    reported: frozenset[str],
    previous_stage: str | None,
    previous_thresholds: frozenset[float],
    *,
    rescoring: bool = False,
) -> FunnelChanges:
    """The stage entries never reported before, and the thresholds crossed since last time.

    Every stage on the lead's path is reported once, in path order, whatever order its
    interactions arrived in: what was reported stays reported, and stages never move
    backwards (a late interaction that would have kept the lead lower changes its score,
    not its stage). Returns to nurture are the router's to report. A rescore under changed
    definitions reports only where the lead now stands, with the reason "rescored". The
    named scores' thresholds met are kept in `reported` too (see `named_threshold_key`).
    """
    named_before = named_thresholds_reported(reported)
    named_now = _named_thresholds_met(evaluation)
    crossings = _crossings(evaluation, previous_thresholds) + _named_crossings(
        evaluation, named_before, named_now
    )
    if rescoring:
        stages = []
        if evaluation.stage is not None and evaluation.stage != previous_stage:
            stages = [
                StageReached(
                    evaluation.stage,
                    previous_stage,
                    evaluation.last_event_time or 0.0,
                    None,
                    evaluation.score,
                    evaluation.grade,
                    "rescored",
                    evaluation.cycle,
                    scores=evaluation.scores,
                )
            ]
        path = frozenset(r.report_key for r in evaluation.stages_reached if r.reason != "returned")
        return FunnelChanges(stages, crossings, path | named_now, evaluation.stage)
    stages = [
        reached
        for reached in evaluation.stages_reached
        if reached.reason != "returned" and reached.report_key not in reported
    ]
    reported = (reported - named_before) | {reached.report_key for reached in stages} | named_now
    return FunnelChanges(stages, crossings, reported, standing_stage(model, evaluation, reported))


def standing_stage(
    model: ScoringModel, evaluation: Evaluation, reported: frozenset[str]
) -> str | None:
    """Where the lead stands: the furthest stage reported in its current climb, or further."""
    ladder = model.ladder
    furthest = evaluation.stage
    prefix = f"{evaluation.cycle}:"
    for key in reported:
        stage = key.removeprefix(prefix)
        if (
            stage != key
            and stage in ladder
            and (furthest not in ladder or ladder[stage] > ladder[furthest])
        ):
            furthest = stage
    return furthest


def _crossings(
    evaluation: Evaluation, previous_thresholds: frozenset[float]
) -> list[ThresholdChange]:
    scores = evaluation.scores
    return [
        ThresholdChange(threshold, "up", evaluation.score, evaluation.grade, scores=scores)
        for threshold in sorted(evaluation.thresholds_met - previous_thresholds)
    ] + [
        ThresholdChange(threshold, "down", evaluation.score, evaluation.grade, scores=scores)
        for threshold in sorted(previous_thresholds - evaluation.thresholds_met, reverse=True)
    ]


def _named_crossings(
    evaluation: Evaluation, before: frozenset[str], now: frozenset[str]
) -> list[ThresholdChange]:
    """Each named score's thresholds crossed, score after score, as `_crossings` orders them."""
    if before == now:
        return []
    scores = evaluation.scores
    crossings = []
    for named in evaluation.named_scores:
        met_before = _thresholds_of(named.key, before)
        crossings += [
            ThresholdChange(threshold, direction, named.score, evaluation.grade, named.key, scores)
            for direction, thresholds in (
                ("up", sorted(named.thresholds_met - met_before)),
                ("down", sorted(met_before - named.thresholds_met, reverse=True)),
            )
            for threshold in thresholds
        ]
    return crossings


def _thresholds_of(score_key: str, reported: frozenset[str]) -> frozenset[float]:
    prefix = f"{_NAMED_THRESHOLD}{score_key}:"  # a key has no colon
    return frozenset(float(key.removeprefix(prefix)) for key in reported if key.startswith(prefix))


def arrival_checkpoints(
    history: Sequence[StoredInteraction], arrived: Sequence[str]
) -> list[list[StoredInteraction]]:
    """The histories to evaluate in turn, so that what is reported of a lead depends on the
    order its interactions arrived in, never on how they were batched.

    `history` holds everything stored, `arrived` the ids of the new interactions in arrival
    order. Replaying in event time shows every stage a run of in-order arrivals reaches, so
    one evaluation covers such a run; an interaction dated before one already known may
    change the path, so the history as it stood before it arrived is evaluated first.
    """
    new = set(arrived)
    current = [item for item in history if item.event_id not in new]
    arriving = {item.event_id: item for item in history if item.event_id in new}
    latest = max((item.order for item in current), default=None)
    checkpoints = []
    unevaluated = False
    for event_id in dict.fromkeys(arrived):
        item = arriving.get(event_id)
        if item is None:
            continue
        if latest is not None and item.order < latest:
            if unevaluated:
                checkpoints.append(list(current))
        else:
            latest = item.order
        current.append(item)
        unevaluated = True
    checkpoints.append(current)
    return checkpoints

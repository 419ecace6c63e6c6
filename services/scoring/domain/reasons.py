"""Why a lead was handed off: the rules that gave it the most points at that moment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from services.scoring.domain.evaluation import Evaluation, StageReached, evaluate
from services.scoring.domain.history import Return, StoredInteraction
from services.scoring.domain.model import Reason, ScoringModel

TOP_REASONS = 3


def top_reasons(
    model: ScoringModel, evaluation: Evaluation, count: int = TOP_REASONS
) -> tuple[Reason, ...]:
    """The rules, behaviour and fit together, that gave the lead the most points (behaviour
    points as decayed at the moment evaluated), largest first; a rule that took points
    away is no reason. `evaluation` must have been explained."""
    labels = {rule.key: rule.description or rule.key for rule in model.definitions.scoring.rules}
    candidates = [
        Reason(rule, labels[rule], points) for rule, points in evaluation.decayed_by_rule.items()
    ] + [Reason(rule, rule, points) for rule, points in evaluation.fit_by_rule.items()]
    ranked = sorted(
        (reason for reason in candidates if reason.points > 0),
        key=lambda reason: (-reason.points, reason.rule),
    )
    return tuple(ranked[:count])


def with_hand_off_reasons(
    model: ScoringModel,
    stages: Sequence[StageReached],
    history: Sequence[StoredInteraction],
    returns: Sequence[Return] = (),
) -> list[StageReached]:
    """The stage entries, each hand-off among them with its reasons.

    `history` is the one the entries were found in: the reasons come from it replayed up
    to the interaction that caused the hand-off, so they are as deterministic as the entry.
    """
    hand_off = model.stage_keys[model.hand_off]
    return [
        replace(reached, reasons=_reasons_at(model, reached, history, returns))
        if reached.stage == hand_off
        else reached
        for reached in stages
    ]


def _reasons_at(
    model: ScoringModel,
    reached: StageReached,
    history: Sequence[StoredInteraction],
    returns: Sequence[Return],
) -> tuple[Reason, ...]:
    if reached.event_id is not None:
        # Interactions of the same moment that sort after the cause had not happened yet.
        cause = (reached.time, reached.event_id)
        history = [item for item in history if item.order <= cause]
    evaluation = evaluate(model, history, reached.time, returns=returns, explain=True)
    return top_reasons(model, evaluation)

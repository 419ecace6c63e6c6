"""Why a lead was handed off: the rules that gave it the most points at that moment."""

from __future__ import annotations

from collections.abc import Mapping

from services.scoring.domain.model import Reason, ScoringModel

TOP_REASONS = 3


def top_reasons(
    model: ScoringModel,
    decayed_by_rule: Mapping[str, float],
    fit_by_rule: Mapping[str, float],
    count: int = TOP_REASONS,
) -> tuple[Reason, ...]:
    """The rules, behaviour and fit together, that gave the lead the most points (behaviour
    points as decayed at the moment evaluated), largest first; a rule that took points
    away is no reason."""
    labels = {rule.key: rule.description or rule.key for rule in model.definitions.scoring.rules}
    candidates = [
        Reason(rule, labels[rule], points) for rule, points in decayed_by_rule.items()
    ] + [Reason(rule, rule, points) for rule, points in fit_by_rule.items()]
    ranked = sorted(
        (reason for reason in candidates if reason.points > 0),
        key=lambda reason: (-reason.points, reason.rule),
    )
    return tuple(ranked[:count])

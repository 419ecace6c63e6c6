"""Decay over time: when a lead is scored, and when its score falls below a threshold."""

from __future__ import annotations

import math
from collections.abc import Sequence

from services.scoring.domain.history import StoredInteraction
from services.scoring.domain.model import ScoringModel
from services.scoring.domain.results import Evaluation


def score_as_of(now: float, interactions: Sequence[StoredInteraction]) -> float:
    """A lead is scored as of now, or as of its latest interaction if one is dated later."""
    return max(now, max((item.time for item in interactions), default=now))


def _seconds_until(
    half_life: float | None, engagement: float, fit: float, threshold: float
) -> float | None:
    floor = threshold - fit
    if half_life is None or engagement + fit < threshold or engagement <= 0 or floor <= 0:
        return None
    return half_life * math.log2(engagement / floor)


def seconds_until_below(
    model: ScoringModel, evaluation: Evaluation, threshold: float
) -> float | None:
    """How long until decay takes the score below `threshold`; None if it never will."""
    return _seconds_until(model.half_life, evaluation.engagement, evaluation.fit, threshold)


def seconds_until_a_threshold_is_lost(model: ScoringModel, evaluation: Evaluation) -> float | None:
    """How long until decay takes the main score, or a named one, below the highest threshold
    it meets (the next threshold to be crossed down); None if none ever will be."""
    until = [
        _seconds_until(
            model.named[named.key].half_life, named.engagement, named.fit, max(named.thresholds_met)
        )
        for named in evaluation.named_scores
        if named.thresholds_met
    ]
    if evaluation.thresholds_met:
        until.append(seconds_until_below(model, evaluation, max(evaluation.thresholds_met)))
    return min((seconds for seconds in until if seconds is not None), default=None)

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


def seconds_until_below(
    model: ScoringModel, evaluation: Evaluation, threshold: float
) -> float | None:
    """How long until decay takes the score below `threshold`; None if it never will."""
    if model.half_life is None or evaluation.score < threshold:
        return None
    floor = threshold - evaluation.fit
    if evaluation.engagement <= 0 or floor <= 0:
        return None
    return model.half_life * math.log2(evaluation.engagement / floor)

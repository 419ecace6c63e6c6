"""The scoring engine: a lead's score, fit, grade and stage from its interactions.

Pure: the result is a function of (definitions, the lead's interactions ordered by event
time, the time it is evaluated at). No database, no broker, no clock.
"""

from services.scoring.domain.decay import score_as_of, seconds_until_below
from services.scoring.domain.evaluation import Evaluation, StageReached, evaluate
from services.scoring.domain.history import Return, StoredInteraction
from services.scoring.domain.lifecycle import (
    FunnelChanges,
    StoredLead,
    ThresholdChange,
    arrival_checkpoints,
    lifecycle_changes,
    report_arrivals,
    standing_stage,
)
from services.scoring.domain.model import DAY, PROFILE_FIELDS, Reason, RuleHit, ScoringModel
from services.scoring.domain.reasons import top_reasons, with_hand_off_reasons

__all__ = [
    "DAY",
    "PROFILE_FIELDS",
    "Evaluation",
    "FunnelChanges",
    "Reason",
    "Return",
    "RuleHit",
    "ScoringModel",
    "StageReached",
    "StoredInteraction",
    "StoredLead",
    "ThresholdChange",
    "arrival_checkpoints",
    "evaluate",
    "lifecycle_changes",
    "report_arrivals",
    "score_as_of",
    "seconds_until_below",
    "standing_stage",
    "top_reasons",
    "with_hand_off_reasons",
]

"""The scoring engine: a lead's score, fit, grade and stage from its interactions.

Pure: the result is a function of (definitions, the lead's interactions ordered by event
time, the time it is evaluated at). No database, no broker, no clock.
"""

from services.scoring.domain.decay import (
    score_as_of,
    seconds_until_a_threshold_is_lost,
    seconds_until_below,
)
from services.scoring.domain.evaluation import evaluate, replay_history
from services.scoring.domain.history import Return, StoredInteraction
from services.scoring.domain.lifecycle import (
    FunnelChanges,
    StoredLead,
    ThresholdChange,
    arrival_checkpoints,
    lifecycle_changes,
    standing_stage,
)
from services.scoring.domain.model import DAY, Reason, RuleHit, ScoringModel
from services.scoring.domain.reasons import top_reasons
from services.scoring.domain.results import (
    Evaluation,
    NamedScoreResult,
    StageReached,
    rounded_scores,
)
from services.scoring.domain.scored import (
    Scored,
    continue_scoring,
    explained,
    report_arrivals,
    rescore,
)
from services.scoring.domain.timeline import Replay

__all__ = [
    "DAY",
    "Evaluation",
    "FunnelChanges",
    "NamedScoreResult",
    "Reason",
    "Replay",
    "Return",
    "RuleHit",
    "Scored",
    "ScoringModel",
    "StageReached",
    "StoredInteraction",
    "StoredLead",
    "ThresholdChange",
    "arrival_checkpoints",
    "continue_scoring",
    "evaluate",
    "explained",
    "lifecycle_changes",
    "replay_history",
    "report_arrivals",
    "rescore",
    "rounded_scores",
    "score_as_of",
    "seconds_until_a_threshold_is_lost",
    "seconds_until_below",
    "standing_stage",
    "top_reasons",
]

"""The router's domain. Pure: no database, no broker, no clock."""

from services.router.domain.actions import (
    Action,
    Outcome,
    action_stages,
    allowed_actions,
    missing_requirements,
)
from services.router.domain.assignment import (
    Choice,
    LeadToRoute,
    Rep,
    account_domain,
    can_take,
    choose_rep,
    is_available,
    lead_to_route,
    sla_deadline,
    team_for,
    territory_matches,
)
from services.router.domain.errors import (
    ActionNotAllowed,
    DeliveryNotFinished,
    LeadNotFound,
    MissingRequirements,
    NotYourLead,
    RepNotFound,
    SubscriptionNotFound,
    UnknownReason,
    UnknownTeam,
)
from services.router.domain.lead import Lead, Return
from services.router.domain.roster import check_team, token_hash
from services.router.domain.rotation import Roster
from services.router.domain.status import OPEN, LeadStatus

__all__ = [
    "OPEN",
    "Action",
    "ActionNotAllowed",
    "Choice",
    "DeliveryNotFinished",
    "Lead",
    "LeadNotFound",
    "LeadStatus",
    "LeadToRoute",
    "MissingRequirements",
    "NotYourLead",
    "Outcome",
    "Rep",
    "RepNotFound",
    "Return",
    "Roster",
    "SubscriptionNotFound",
    "UnknownReason",
    "UnknownTeam",
    "account_domain",
    "action_stages",
    "allowed_actions",
    "can_take",
    "check_team",
    "choose_rep",
    "is_available",
    "lead_to_route",
    "missing_requirements",
    "sla_deadline",
    "team_for",
    "territory_matches",
    "token_hash",
]

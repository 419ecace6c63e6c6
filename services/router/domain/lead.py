"""A sales-ready lead in the router, with the rules of what may happen to it when."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from services.router.domain.actions import (
    Action,
    Outcome,
    action_stages,
    allowed_actions,
    missing_requirements,
)
from services.router.domain.assignment import LeadToRoute, lead_to_route
from services.router.domain.errors import (
    ActionNotAllowed,
    MissingRequirements,
    NotYourLead,
    UnknownReason,
)
from services.router.domain.status import LeadStatus
from shared.definitions.model import LeadDefinitions, NurtureReason


@dataclass(frozen=True)
class Return:
    """A lead a rep sent back to marketing: why, where it goes and when it may come back."""

    key: str
    reason: NurtureReason
    eligible_again_at: datetime | None


# What sales recorded of a lead, kept when scoring hands it over once more.
_KEPT_ON_HAND_OFF = ("assigned_at", "accepted_at", "sla_deadline", "qualification", "amount")


@dataclass
class Lead:
    id: str
    status: LeadStatus
    stage: str | None
    team: str | None
    grade: str | None
    score: float | None
    profile: dict[str, Any]
    account_domain: str | None
    handed_off_at: datetime | None
    definitions_version: str | None
    rep_id: str | None = None
    queued_at: datetime | None = None
    assigned_at: datetime | None = None
    accepted_at: datetime | None = None
    sla_deadline: datetime | None = None
    breaches: int = 0
    escalated_to: str | None = None
    qualification: dict[str, Any] = field(default_factory=dict)
    amount: float | None = None
    # Why scoring handed it off: the rules that gave the most points (rule, label, points).
    reasons: list[dict[str, Any]] = field(default_factory=list)
    # Every named score when scoring handed it off: score key -> value.
    scores: dict[str, float] = field(default_factory=dict)

    def handed_off_again(self, fresh: Lead) -> Lead:
        """The lead handed over once more: `fresh`, with what sales recorded of it before."""
        return replace(fresh, **{name: getattr(self, name) for name in _KEPT_ON_HAND_OFF})

    @property
    def is_with_sales(self) -> bool:
        """With a rep, or waiting for one: a hand-off repeated now changes nothing."""
        return self.status in (LeadStatus.QUEUED, LeadStatus.ASSIGNED, LeadStatus.ACCEPTED)

    def route(self) -> LeadToRoute:
        return lead_to_route(self.id, self.grade, self.profile, self.account_domain)

    def queue(self, now: datetime) -> bool:
        """Nobody can take the lead now: it waits. Answers whether it joins the queue now
        (True once while it waits, however often the queue is tried)."""
        joins = self.queued_at is None
        self.status, self.rep_id = LeadStatus.QUEUED, None
        self.queued_at = self.queued_at or now
        return joins

    def assign(self, rep_id: str, now: datetime, sla_deadline: datetime | None) -> None:
        """The rep gets the lead and must accept it by the SLA deadline."""
        self.status, self.rep_id = LeadStatus.ASSIGNED, rep_id
        self.assigned_at, self.sla_deadline, self.queued_at = now, sla_deadline, None

    def miss_sla(self, escalate_after: int, manager: str) -> Literal["reassign", "escalate"] | None:
        """The rep did not accept in time: the lead goes to another rep, and the last
        allowed miss escalates it to the team's manager. None: it no longer waits."""
        if self.status != LeadStatus.ASSIGNED:
            return None
        self.breaches += 1
        if self.breaches < escalate_after:
            return "reassign"
        self.escalated_to = manager
        return "escalate"

    def accept(self, rep_id: str, definitions: LeadDefinitions, now: datetime) -> None:
        """The rep takes the lead on: the SLA clock stops."""
        self._act(rep_id, "accept", {}, definitions)
        self.status, self.accepted_at = LeadStatus.ACCEPTED, now

    def qualify(self, rep_id: str, details: dict[str, Any], definitions: LeadDefinitions) -> None:
        """The rep records budget, timeframe, requirements (entering the qualify stage where
        the definitions have one)."""
        self._act(rep_id, "qualify", details, definitions)

    def convert(self, rep_id: str, details: dict[str, Any], definitions: LeadDefinitions) -> None:
        """The lead becomes an opportunity, once the stage's required fields are recorded."""
        self._act(rep_id, "convert", details, definitions)

    def close(
        self, rep_id: str, outcome: Outcome, details: dict[str, Any], definitions: LeadDefinitions
    ) -> None:
        """Won (with its amount) or lost: the lead no longer counts against the rep."""
        self._act(rep_id, outcome, details, definitions)
        self.status, self.amount = LeadStatus.CLOSED, details.get("amount")

    def reject(
        self, rep_id: str, details: dict[str, Any], definitions: LeadDefinitions, now: datetime
    ) -> Return:
        """The rep sends the lead back to marketing with one of the nurture reasons; it may
        be handed off again after the reason's cool-off (never, when disqualified)."""
        self._check(rep_id, "reject", details, definitions)
        reasons = definitions.nurture.reasons if definitions.nurture else {}
        key = str(details.get("reason", ""))
        reason = reasons.get(key)
        if reason is None:
            raise UnknownReason(key, sorted(reasons))
        self.status, self.stage = LeadStatus.RETURNED, reason.stage
        eligible = (
            None if reason.action == "disqualify" else now + timedelta(days=reason.cool_off_days)
        )
        return Return(key, reason, eligible)

    def _check(
        self, rep_id: str, action: Action, details: dict[str, Any], definitions: LeadDefinitions
    ) -> None:
        if self.rep_id != rep_id:
            raise NotYourLead(self.id)
        allowed = allowed_actions(definitions, self.stage, self.status)
        if action not in allowed:
            raise ActionNotAllowed(action, self.stage, allowed)
        missing = missing_requirements(definitions, action, details)
        if missing:
            raise MissingRequirements(missing)

    def _act(
        self, rep_id: str, action: Action, details: dict[str, Any], definitions: LeadDefinitions
    ) -> None:
        """Check the action, move the lead to the stage it enters, keep what was recorded."""
        self._check(rep_id, action, details, definitions)
        self.stage = action_stages(definitions).get(action, self.stage)
        if details:
            self.qualification = {**self.qualification, **details}

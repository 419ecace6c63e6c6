"""Giving a lead to a rep, or to the queue, and saying so on lead.handoffs."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel

from services.router import metrics
from services.router.domain import (
    OPEN,
    Lead,
    LeadStatus,
    LeadToRoute,
    Roster,
    choose_rep,
    sla_deadline,
    team_for,
)
from services.router.domain.notices import Audience, notices_for
from services.router.ports import UnitOfWork, UnitsOfWork
from shared.definitions import LoadedDefinitions
from shared.definitions.model import Routing, Team, grade_ranks
from shared.events import CloudEvent, HandoffRecorded, LeadRouted
from shared.outbox import outbox_row
from shared.topics import HANDOFFS

SOURCE = "/router"
RoutingKind = Literal["assigned", "reassigned", "accepted", "escalated", "queued"]
EventT = TypeVar("EventT", bound=CloudEvent[Any])


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Assigner:
    """Who gets a lead, by the definitions' routing, at the time its clock says."""

    loaded: LoadedDefinitions
    clock: Callable[[], datetime] = field(default=_now)
    audience: Audience = field(default_factory=Audience)

    @property
    def routing(self) -> Routing:
        assert self.loaded.definitions.routing is not None, "the definitions have no routing"
        return self.loaded.definitions.routing

    def team(self, key: str | None, route: LeadToRoute) -> Team:
        """The lead's team: the one it was routed to, if the definitions still have it,
        else the one its territory falls in now."""
        known = next((team for team in self.routing.teams if team.key == key), None)
        return known or team_for(self.routing, route)

    async def lock_roster(self, uow: UnitOfWork, leads: Sequence[Lead]) -> Roster:
        """Lock the rotations and reps these leads may go to (and the reps they are with)."""
        teams = {self.team(lead.team, lead.route()).key for lead in leads}
        domains = (
            {lead.account_domain for lead in leads if lead.account_domain}
            if self.routing.account_ownership
            else set()
        )
        current_reps = {lead.rep_id for lead in leads if lead.rep_id}
        return await uow.reps.lock_for_routing(teams, domains, current_reps)

    async def assign(
        self,
        uow: UnitOfWork,
        roster: Roster,
        lead: Lead,
        *,
        kind: RoutingKind,
        exclude: frozenset[str] = frozenset(),
    ) -> bool:
        """Give the lead to the best rep of the roster who can take it; queue it if nobody
        can."""
        route = lead.route()
        team = self.team(lead.team, route)
        owner = roster.owner_of(lead.account_domain) if self.routing.account_ownership else None
        now, previous = self.clock(), lead.rep_id
        candidates = roster.candidates(team.key, owner)
        choice = choose_rep(route, team, candidates, now, account_owner=owner, exclude=exclude)
        if choice is None and lead.status == LeadStatus.QUEUED and lead.queued_at is not None:
            return False  # still waiting: nothing changes
        if lead.status in OPEN:
            roster.released(previous)
        if choice is None:
            joins = lead.queue(now)
            await uow.leads.save(lead)
            await uow.timers.set(lead.id, None)
            if joins:
                reason = "no rep in the team can take it now"
                await self.announce(uow, lead, "queued", reason, previous_rep=previous)
            return False
        deadline = sla_deadline(self.routing, lead.grade, now)
        lead.assign(choice.rep_id, now, deadline)
        unowned = lead.account_domain if roster.owner_of(lead.account_domain) is None else None
        roster.took(choice.rep_id, lead.account_domain)
        await uow.leads.save(lead)
        await uow.reps.took(choice.rep_id, unowned)
        await uow.timers.set(lead.id, deadline)
        await self.announce(
            uow, lead, kind, choice.reason, previous_rep=previous, deadline=deadline
        )
        return True

    async def drain_queue(self, units: UnitsOfWork, limit: int = 200) -> int:
        """Assign waiting leads while reps can take them, hottest first, then oldest, in a
        transaction of its own. Answers how many were assigned."""
        ranks = grade_ranks(self.loaded.definitions)
        async with units() as uow:
            waiting = await uow.leads.queued(limit)
            if not waiting:
                return 0
            waiting.sort(key=lambda lead: (ranks.get(lead.grade or "", len(ranks)), lead.queued_at))
            roster = await self.lock_roster(uow, waiting)
            assigned = 0
            for lead in waiting:
                assigned += await self.assign(uow, roster, lead, kind="assigned")
            await uow.commit()
        return assigned

    async def announce(
        self,
        uow: UnitOfWork,
        lead: Lead,
        kind: RoutingKind,
        reason: str,
        *,
        previous_rep: str | None = None,
        deadline: datetime | None = None,
        escalated_to: str | None = None,
    ) -> None:
        """Publish what just happened to the lead on lead.handoffs, and log it for the stream."""
        routed = LeadRouted(
            kind=kind,
            lead_id=lead.id,
            rep_id=lead.rep_id,
            previous_rep_id=previous_rep if previous_rep != lead.rep_id else None,
            team=lead.team,
            grade=lead.grade,
            reason=reason,
            sla_deadline=deadline,
            escalated_to=escalated_to,
            occurred_at=self.clock(),
        )
        envelope = self.envelope(HandoffRecorded, f"leadflow.handoff.{kind}", lead.id, routed)
        metrics.HANDOFFS.labels(kind).inc()
        await uow.outbox.add([outbox_row(envelope, HANDOFFS.name, lead.id)])
        await uow.history.log_handoff(envelope)
        await uow.notices.plan(
            notices_for(
                kind,
                event_id=envelope.id,
                lead_id=lead.id,
                rep_id=lead.rep_id,
                team=next((team for team in self.routing.teams if team.key == lead.team), None),
                sla=self.routing.sla.get(lead.grade or ""),
                at=routed.occurred_at,
                deadline=deadline,
                audience=self.audience,
            )
        )

    def envelope(
        self, kind: type[EventT], event_type: str, subject: str, data: BaseModel
    ) -> EventT:
        """An event of the router, stamped with its clock and the definitions' version."""
        return kind(
            id=str(uuid.uuid4()),
            source=SOURCE,
            type=event_type,
            time=self.clock(),
            subject=subject,
            definitions_version=self.loaded.version,
            data=data,
        )

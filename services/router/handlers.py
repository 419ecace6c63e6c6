"""Router's service layer: hand-offs become assignments; SLAs, actions, returns, the roster."""

from __future__ import annotations

import hashlib
import uuid
import zlib
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.router import metrics, repository
from services.router.domain import (
    LeadToRoute,
    account_domain,
    choose_rep,
    sla_deadline,
    team_for,
)
from services.router.tables import consumer_offsets, outbox, sla_timers
from shared.consumer import Batch, save_positions
from shared.deadletter import dead_letter_rows, read_records
from shared.definitions import LoadedDefinitions
from shared.definitions.model import Routing, Team, grade_ranks
from shared.events import (
    CloudEvent,
    HandoffRecorded,
    LeadRouted,
    LeadStageChanged,
    LifecycleRecorded,
)
from shared.outbox import add_to_outbox, outbox_row
from shared.plumbing import claim_due
from shared.topics import HANDOFFS


def _route(
    lead_id: str, grade: str | None, profile: Mapping[str, Any], domain: str | None
) -> LeadToRoute:
    """A lead as the assignment engine sees it."""
    return LeadToRoute(
        lead_id,
        grade,
        country=profile.get("country"),
        company_size=profile.get("company_size"),
        industry=profile.get("industry"),
        account_domain=domain,
    )


CONSUMER_GROUP = "leadflow-router"
ROUTING_LOCK = zlib.crc32(b"leadflow.router.routing")
SOURCE = "/router"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class RouterService:
    engine: AsyncEngine
    loaded: LoadedDefinitions
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    on_committed: Callable[[], None] = field(default=lambda: None)

    @asynccontextmanager
    async def routing_transaction(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that may move leads between reps.

        Such transactions run one at a time across all router instances (an advisory lock
        taken before any row lock): no rep is ever overbooked by two routers, and no two
        transactions can lock reps and leads in opposite orders and deadlock.
        """
        async with self.engine.begin() as connection:
            await connection.execute(select(func.pg_advisory_xact_lock(ROUTING_LOCK)))
            yield connection

    def _team(self, key: str | None, route: LeadToRoute) -> Team:
        """The lead's team: the one it was routed to, if the definitions still have it,
        else the one its territory falls in now."""
        known = next((team for team in self.routing.teams if team.key == key), None)
        return known or team_for(self.routing, route)

    @property
    def routing(self) -> Routing:
        assert self.loaded.definitions.routing is not None, "the definitions have no routing"
        return self.loaded.definitions.routing

    # -- consuming lead.lifecycle ------------------------------------------------------

    async def handle_lifecycle(self, batch: Batch) -> None:
        """Record every stage change and route every lead scoring hands off: one transaction
        with the stored offsets."""
        events, dead = read_records(
            batch.records, LifecycleRecorded, expected="a lifecycle event", source=SOURCE
        )
        changes = [
            {
                "event_id": event.id,
                "lead_id": event.data.lead_id,
                "from_stage": event.data.from_stage,
                "to_stage": event.data.to_stage,
                "occurred_at": event.data.occurred_at,
                "grade": event.data.grade,
                "reason": event.data.reason,
                "campaigns": list(event.data.profile.campaigns),
                "source_channel": event.data.profile.source_channel,
            }
            for event in events
            if isinstance(event.data, LeadStageChanged)
        ]
        hand_offs = [
            (event.id, event.data)
            for event in events
            if isinstance(event.data, LeadStageChanged) and event.data.is_hand_off
        ]
        async with self.routing_transaction() as connection:
            await add_to_outbox(connection, outbox, dead_letter_rows(dead))
            await repository.record_stage_changes(connection, changes)
            new = await repository.first_time(connection, (event_id for event_id, _ in hand_offs))
            for event_id, change in hand_offs:
                if event_id in new:
                    new.discard(event_id)  # a batch may hold a republished copy too
                    await self._hand_off(connection, change)
            await save_positions(connection, consumer_offsets, CONSUMER_GROUP, batch)
        self.on_committed()

    async def _hand_off(self, connection: AsyncConnection, change: LeadStageChanged) -> None:
        lead = await repository.lead_for_update(connection, change.lead_id)
        if lead is not None and (lead.status in repository.OPEN or lead.status == "queued"):
            return  # already with a rep, or waiting for one
        profile = change.profile.model_dump(mode="json")
        route = _route(change.lead_id, change.grade, profile, account_domain(change.profile.email))
        await repository.insert_lead(
            connection,
            {
                "id": change.lead_id,
                "status": "queued",
                "stage": change.to_stage,
                "rep_id": None,
                "team": self._team(None, route).key,
                "grade": change.grade,
                "score": change.score,
                "profile": profile,
                "account_domain": route.account_domain,
                "handed_off_at": change.occurred_at,
                "queued_at": None,
                "breaches": 0,
                "escalated_to": None,
                "definitions_version": self.loaded.version,
            },
        )
        await self.assign(connection, change.lead_id, kind="assigned")

    async def assign(
        self,
        connection: AsyncConnection,
        lead_id: str,
        *,
        kind: str,
        exclude: frozenset[str] = frozenset(),
    ) -> bool:
        """Give the lead to the best rep who can take it; queue it if nobody can."""
        lead = await repository.lead_for_update(connection, lead_id)
        assert lead is not None
        route = _route(lead.id, lead.grade, lead.profile, lead.account_domain)
        team = self._team(lead.team, route)
        owner = (
            await repository.account_owner(connection, lead.account_domain)
            if self.routing.account_ownership
            else None
        )
        candidates = await repository.reps_for(connection, team.key, owner)
        now = self.clock()
        choice = choose_rep(route, team, candidates, now, account_owner=owner, exclude=exclude)
        if choice is None:
            await repository.save_lead(
                connection, lead_id, status="queued", rep_id=None, queued_at=lead.queued_at or now
            )
            await repository.set_sla_timer(connection, lead_id, None)
            # `queued_at` is set while the lead waits: it joins the queue (and says so) once.
            if lead.queued_at is None:
                await self.record_routing(
                    connection, lead, "queued", None, "no rep in the team can take it now", None
                )
            return False
        deadline = sla_deadline(self.routing, lead.grade, now)
        await repository.save_lead(
            connection,
            lead_id,
            status="assigned",
            rep_id=choice.rep_id,
            assigned_at=now,
            sla_deadline=deadline,
            queued_at=None,
        )
        await repository.mark_assigned(connection, choice.rep_id, now)
        await repository.claim_account(connection, lead.account_domain, choice.rep_id)
        await repository.set_sla_timer(connection, lead_id, deadline)
        await self.record_routing(connection, lead, kind, choice.rep_id, choice.reason, deadline)
        return True

    async def record_routing(
        self,
        connection: AsyncConnection,
        lead: Row[Any],
        kind: str,
        rep_id: str | None,
        reason: str,
        deadline: datetime | None,
        escalated_to: str | None = None,
    ) -> None:
        routed = LeadRouted(
            kind=kind,
            lead_id=lead.id,
            rep_id=rep_id,
            previous_rep_id=lead.rep_id if lead.rep_id != rep_id else None,
            team=lead.team,
            grade=lead.grade,
            reason=reason,
            sla_deadline=deadline,
            escalated_to=escalated_to,
            occurred_at=self.clock(),
        )
        envelope = self.envelope(HandoffRecorded, f"leadflow.handoff.{kind}", lead.id, routed)
        metrics.HANDOFFS.labels(kind).inc()
        await add_to_outbox(connection, outbox, [outbox_row(envelope, HANDOFFS.name, lead.id)])
        await repository.log_handoff(
            connection,
            {
                "event_id": envelope.id,
                "lead_id": lead.id,
                "rep_id": rep_id or lead.rep_id,
                "team": lead.team,
                "kind": kind,
                "envelope": envelope.model_dump(mode="json"),
            },
        )

    def envelope(
        self, kind: type[CloudEvent[Any]], event_type: str, subject: str, data: BaseModel
    ) -> Any:
        return kind(
            id=str(uuid.uuid4()),
            source=SOURCE,
            type=event_type,
            time=self.clock(),
            subject=subject,
            definitions_version=self.loaded.version,
            data=data,
        )

    async def drain_queue(self, connection: AsyncConnection, limit: int = 200) -> int:
        """Assign waiting leads while reps can take them: hottest first, then oldest."""
        ranks = grade_ranks(self.loaded.definitions)
        waiting = await repository.queued_leads(connection, limit)
        waiting.sort(key=lambda lead: (ranks.get(lead.grade or "", len(ranks)), lead.queued_at))
        assigned = 0
        for lead in waiting:
            assigned += await self.assign(connection, lead.id, kind="assigned")
        return assigned

    # -- follow-up -------------------------------------------------------------------

    async def handle_due_slas(self, limit: int = 100) -> int:
        """A missed SLA reassigns the lead; the last allowed miss escalates to the manager."""
        async with self.routing_transaction() as connection:
            due = await claim_due(connection, sla_timers, self.clock(), limit)
            for lead_id in due:
                await self._breach(connection, lead_id)
        if due:
            self.on_committed()
        return len(due)

    async def _breach(self, connection: AsyncConnection, lead_id: str) -> None:
        lead = await repository.lead_for_update(connection, lead_id)
        await repository.set_sla_timer(connection, lead_id, None)
        if lead is None or lead.status != "assigned":
            return
        breaches = lead.breaches + 1
        await repository.save_lead(connection, lead_id, breaches=breaches)
        if breaches >= self.routing.escalate_after_breaches:
            manager = self._team(lead.team, _route(lead.id, lead.grade, lead.profile, None)).manager
            await repository.save_lead(connection, lead_id, escalated_to=manager)
            reason = f"SLA missed {breaches} times; escalated to {manager}"
            await self.record_routing(
                connection, lead, "escalated", lead.rep_id, reason, None, manager
            )
            return
        await self.assign(connection, lead_id, kind="reassigned", exclude=frozenset({lead.rep_id}))

"""The router's writes to its schema: leads and reps as entities, timers, history, outbox."""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.router.domain import OPEN, Lead, LeadStatus, Rep
from services.router.tables import (
    account_owners,
    handoff_log,
    leads,
    processed_events,
    reps,
    sales_actions,
    sla_timers,
    stage_history,
)
from shared.events import HandoffRecorded, SalesActionRecorded
from shared.plumbing import claim_due

ROUTING_LOCK = zlib.crc32(b"leadflow.router.routing")
LEAD_COLUMNS = [field.name for field in dataclasses.fields(Lead)]


async def take_routing_lock(connection: AsyncConnection) -> None:
    """Wait until no other routing transaction runs, on any router instance (the lock is
    held until this transaction ends)."""
    await connection.execute(select(func.pg_advisory_xact_lock(ROUTING_LOCK)))


async def open_lead_counts(connection: AsyncConnection) -> dict[str, int]:
    """Rep id -> how many leads count against their capacity."""
    rows = await connection.execute(
        select(leads.c.rep_id, func.count())
        .where(leads.c.status.in_([str(status) for status in OPEN]))
        .group_by(leads.c.rep_id)
    )
    return {row[0]: row[1] for row in rows}


def open_leads_of(rep_id: str) -> Select[Any]:
    """A rep's open leads, the one whose SLA ends first first."""
    return (
        select(leads)
        .where(leads.c.rep_id == rep_id, leads.c.status.in_([str(status) for status in OPEN]))
        .order_by(leads.c.sla_deadline.asc().nulls_last(), leads.c.assigned_at)
    )


def _lead(row: Row[Any]) -> Lead:
    values = {name: getattr(row, name) for name in LEAD_COLUMNS}
    return Lead(**{**values, "status": LeadStatus(row.status)})


def _rep(row: Row[Any], open_leads: int) -> Rep:
    return Rep(
        id=row.id,
        team=row.team,
        capacity=row.capacity,
        open_leads=open_leads,
        weight=row.weight,
        active=row.active,
        out_of_office_until=row.out_of_office_until,
        timezone=row.timezone,
        work_start_hour=row.work_start_hour,
        work_end_hour=row.work_end_hour,
        work_days=tuple(row.work_days),
        assigned_total=row.assigned_total,
        last_assigned_at=row.last_assigned_at,
    )


class SqlLeads:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def get_for_update(self, lead_id: str) -> Lead | None:
        query = select(leads).where(leads.c.id == lead_id).with_for_update()
        row = (await self._connection.execute(query)).first()
        return _lead(row) if row is not None else None

    async def save(self, lead: Lead) -> None:
        values = {name: getattr(lead, name) for name in LEAD_COLUMNS}
        values |= {"status": str(lead.status), "updated_at": func.now()}
        statement = upsert(leads).values(values)
        changed = {key: statement.excluded[key] for key in values if key != "id"}
        await self._connection.execute(
            statement.on_conflict_do_update(index_elements=[leads.c.id], set_=changed)
        )

    async def queued(self, limit: int) -> list[Lead]:
        rows = await self._connection.execute(
            select(leads)
            .where(leads.c.status == str(LeadStatus.QUEUED))
            .order_by(leads.c.queued_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [_lead(row) for row in rows]

    async def open_leads_of(self, rep_id: str) -> list[Lead]:
        rows = await self._connection.execute(open_leads_of(rep_id).with_for_update())
        return [_lead(row) for row in rows]


class SqlReps:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def of_team(self, team: str, account_owner: str | None) -> list[Rep]:
        # Locked, so that two routers never overbook one rep.
        query = select(reps).where((reps.c.team == team) | (reps.c.id == account_owner))
        rows = (await self._connection.execute(query.order_by(reps.c.id).with_for_update())).all()
        counts = await open_lead_counts(self._connection)
        return [_rep(row, counts.get(row.id, 0)) for row in rows]

    async def mark_assigned(self, rep_id: str, at: datetime) -> None:
        await self._connection.execute(
            update(reps)
            .where(reps.c.id == rep_id)
            .values(assigned_total=reps.c.assigned_total + 1, last_assigned_at=at)
        )

    async def add(self, rep_id: str, token_hash: str, fields: Mapping[str, Any]) -> None:
        await self._connection.execute(
            insert(reps).values(id=rep_id, token_hash=token_hash, **fields)
        )

    async def change(self, rep_id: str, fields: Mapping[str, Any]) -> bool:
        found = await self._connection.scalar(
            update(reps).where(reps.c.id == rep_id).values(**fields).returning(reps.c.id)
            if fields
            else select(reps.c.id).where(reps.c.id == rep_id)
        )
        return found is not None

    async def account_owner(self, domain: str | None) -> str | None:
        if not domain:
            return None
        return await self._connection.scalar(
            select(account_owners.c.rep_id).where(account_owners.c.domain == domain)
        )

    async def claim_account(self, domain: str | None, rep_id: str) -> None:
        if domain:
            await self._connection.execute(
                upsert(account_owners).values(domain=domain, rep_id=rep_id).on_conflict_do_nothing()
            )


class SqlSlaTimers:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def set(self, lead_id: str, due: datetime | None) -> None:
        await self._connection.execute(delete(sla_timers).where(sla_timers.c.lead_id == lead_id))
        if due is not None:
            await self._connection.execute(insert(sla_timers).values(lead_id=lead_id, due_at=due))

    async def claim_due(self, now: datetime, limit: int) -> list[str]:
        return await claim_due(self._connection, sla_timers, now, limit)


class SqlHistory:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def first_time(self, event_ids: Iterable[str]) -> set[str]:
        rows = [{"event_id": event_id} for event_id in event_ids]
        if not rows:
            return set()
        result = await self._connection.execute(
            upsert(processed_events)
            .values(rows)
            .on_conflict_do_nothing()
            .returning(processed_events.c.event_id)
        )
        return set(result.scalars())

    async def record_stage_changes(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Keep every stage change once (the funnel reports read them)."""
        if rows:
            await self._connection.execute(
                upsert(stage_history).on_conflict_do_nothing(), list(rows)
            )

    async def log_handoff(self, envelope: HandoffRecorded) -> None:
        routed = envelope.data
        await self._connection.execute(
            insert(handoff_log).values(
                event_id=envelope.id,
                lead_id=routed.lead_id,
                rep_id=routed.rep_id or routed.previous_rep_id,
                team=routed.team,
                kind=routed.kind,
                envelope=envelope.model_dump(mode="json"),
            )
        )

    async def record_sales_action(self, envelope: SalesActionRecorded) -> None:
        fact = envelope.data
        await self._connection.execute(
            insert(sales_actions).values(
                event_id=envelope.id,
                lead_id=fact.lead_id,
                rep_id=fact.rep_id,
                action=fact.action,
                details=fact.details,
            )
        )

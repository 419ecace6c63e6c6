"""Queries of the router schema."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.router.domain import Rep
from services.router.tables import (
    account_owners,
    handoff_log,
    leads,
    processed_events,
    reps,
    sla_timers,
    stage_history,
)

OPEN = ("assigned", "accepted")


async def first_time(connection: AsyncConnection, event_ids: Iterable[str]) -> set[str]:
    """Record these event ids as processed; answer those not seen before."""
    rows = [{"event_id": event_id} for event_id in event_ids]
    if not rows:
        return set()
    result = await connection.execute(
        upsert(processed_events)
        .values(rows)
        .on_conflict_do_nothing()
        .returning(processed_events.c.event_id)
    )
    return set(result.scalars())


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


async def open_lead_counts(connection: AsyncConnection) -> dict[str, int]:
    rows = await connection.execute(
        select(leads.c.rep_id, func.count())
        .where(leads.c.status.in_(OPEN))
        .group_by(leads.c.rep_id)
    )
    return {row[0]: row[1] for row in rows}


async def reps_for(connection: AsyncConnection, team: str, also: str | None) -> list[Rep]:
    """The team's reps (and the account owner), locked so two routers never overbook one."""
    query = select(reps).where((reps.c.team == team) | (reps.c.id == also)).order_by(reps.c.id)
    rows = (await connection.execute(query.with_for_update())).all()
    counts = await open_lead_counts(connection)
    return [_rep(row, counts.get(row.id, 0)) for row in rows]


async def account_owner(connection: AsyncConnection, domain: str | None) -> str | None:
    if not domain:
        return None
    return await connection.scalar(
        select(account_owners.c.rep_id).where(account_owners.c.domain == domain)
    )


async def claim_account(connection: AsyncConnection, domain: str | None, rep_id: str) -> None:
    if domain:
        await connection.execute(
            upsert(account_owners).values(domain=domain, rep_id=rep_id).on_conflict_do_nothing()
        )


async def lead_for_update(connection: AsyncConnection, lead_id: str) -> Row[Any] | None:
    return (
        await connection.execute(select(leads).where(leads.c.id == lead_id).with_for_update())
    ).first()


async def save_lead(connection: AsyncConnection, lead_id: str, **values: Any) -> None:
    values["updated_at"] = func.now()
    await connection.execute(update(leads).where(leads.c.id == lead_id).values(**values))


async def insert_lead(connection: AsyncConnection, values: dict[str, Any]) -> None:
    statement = upsert(leads).values(values)
    changed = {key: statement.excluded[key] for key in values if key != "id"}
    await connection.execute(
        statement.on_conflict_do_update(index_elements=[leads.c.id], set_=changed)
    )


async def mark_assigned(connection: AsyncConnection, rep_id: str, at: datetime) -> None:
    await connection.execute(
        update(reps)
        .where(reps.c.id == rep_id)
        .values(assigned_total=reps.c.assigned_total + 1, last_assigned_at=at)
    )


async def set_sla_timer(connection: AsyncConnection, lead_id: str, due: datetime | None) -> None:
    await connection.execute(delete(sla_timers).where(sla_timers.c.lead_id == lead_id))
    if due is not None:
        await connection.execute(insert(sla_timers).values(lead_id=lead_id, due_at=due))


async def queued_leads(connection: AsyncConnection, limit: int) -> list[Row[Any]]:
    """Leads waiting for a rep, locked; other routers skip them."""
    rows = await connection.execute(
        select(leads)
        .where(leads.c.status == "queued")
        .order_by(leads.c.queued_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(rows)


async def open_leads_of(connection: AsyncConnection, rep_id: str) -> list[Row[Any]]:
    rows = await connection.execute(
        select(leads)
        .where(leads.c.rep_id == rep_id, leads.c.status.in_(OPEN))
        .order_by(leads.c.sla_deadline.asc().nulls_last(), leads.c.assigned_at)
    )
    return list(rows)


async def log_handoff(connection: AsyncConnection, row: dict[str, Any]) -> None:
    await connection.execute(insert(handoff_log).values(row))


async def handoffs_after(
    connection: AsyncConnection, seq: int, rep_id: str | None, team: str | None, limit: int = 500
) -> list[Row[Any]]:
    query = (
        select(handoff_log).where(handoff_log.c.seq > seq).order_by(handoff_log.c.seq).limit(limit)
    )
    if rep_id is not None:
        query = query.where(handoff_log.c.rep_id == rep_id)
    if team is not None:
        query = query.where(handoff_log.c.team == team)
    return list(await connection.execute(query))


async def record_stage_changes(connection: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Keep every stage change once (the funnel reports read them)."""
    if rows:
        await connection.execute(upsert(stage_history).on_conflict_do_nothing(), rows)

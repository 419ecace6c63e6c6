"""The router's writes to its schema: leads and reps as entities, timers, history, outbox."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, Table, delete, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import Insert
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.router.domain import OPEN, Lead, LeadStatus, Rep, Roster
from services.router.tables import (
    account_owners,
    handoff_log,
    leads,
    processed_events,
    reps,
    sales_actions,
    sla_timers,
    stage_history,
    team_rotations,
)
from shared.events import HandoffRecorded, SalesActionRecorded

LEAD_COLUMNS = [field.name for field in dataclasses.fields(Lead)]
OPEN_STATUSES = [str(status) for status in OPEN]


def _upsert(table: Table, changed: Iterable[str], **also: Any) -> Insert:
    statement = upsert(table)
    return statement.on_conflict_do_update(
        index_elements=list(table.primary_key),
        set_={name: statement.excluded[name] for name in changed} | also,
    )


SAVE_LEADS = _upsert(leads, [name for name in LEAD_COLUMNS if name != "id"], updated_at=func.now())
SET_TIMERS = _upsert(sla_timers, ["due_at"])
# Whoever may give an account its owner holds the account's lock: leads of one company routed
# at once in two teams (by two routers) still go to one owner. Keys are text, apart from the
# advisory locks of other schemas by their prefix, taken in the order of their hashes.
ACCOUNT_LOCK_PREFIX = "router/account/"
LOCK_ACCOUNTS = text(
    "SELECT pg_advisory_xact_lock(key) FROM (SELECT DISTINCT hashtextextended(k, 0) AS key"
    " FROM unnest(CAST(:keys AS text[])) AS k ORDER BY 1) AS keys"
)
# Turns are drawn in the order of the ids given.
TAKE_TURNS = text(
    """
    UPDATE router.reps SET assigned_total = reps.assigned_total + took.leads,
                           last_turn = took.turn
    FROM (SELECT id, leads, nextval('router.rotation_turns') AS turn
          FROM unnest(CAST(:ids AS uuid[]), CAST(:leads AS integer[]))
               WITH ORDINALITY AS taken (id, leads, number)
          ORDER BY number) took
    WHERE reps.id = took.id
    """
)


def open_leads_of(rep_id: str) -> Select[Any]:
    """A rep's open leads, the one whose SLA ends first first."""
    return (
        select(leads)
        .where(leads.c.rep_id == rep_id, leads.c.status.in_(OPEN_STATUSES))
        .order_by(leads.c.sla_deadline.asc().nulls_last(), leads.c.assigned_at)
    )


def _lead(row: Row[Any]) -> Lead:
    values = {name: getattr(row, name) for name in LEAD_COLUMNS}
    return Lead(**{**values, "status": LeadStatus(row.status)})


def _rep(row: Row[Any]) -> Rep:
    return Rep(
        id=row.id,
        team=row.team,
        capacity=row.capacity,
        open_leads=row.open_leads,
        weight=row.weight,
        active=row.active,
        out_of_office_until=row.out_of_office_until,
        timezone=row.timezone,
        work_start_hour=row.work_start_hour,
        work_end_hour=row.work_end_hour,
        work_days=tuple(row.work_days),
        assigned_total=row.assigned_total,
        last_turn=row.last_turn,
    )


class SqlLeads:
    """Saved leads are written when the transaction commits (`flush`), all together."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection
        self._unsaved: dict[str, dict[str, Any]] = {}

    async def get_for_update(self, lead_id: str) -> Lead | None:
        return (await self.lock([lead_id])).get(lead_id)

    async def lock(self, lead_ids: Collection[str]) -> dict[str, Lead]:
        # By id, the order every routing transaction locks leads in.
        query = select(leads).where(leads.c.id.in_(lead_ids)).order_by(leads.c.id)
        rows = await self._connection.execute(query.with_for_update())
        return {row.id: _lead(row) for row in rows}

    async def save(self, lead: Lead) -> None:
        values = {name: getattr(lead, name) for name in LEAD_COLUMNS}
        self._unsaved[lead.id] = values | {"status": str(lead.status)}

    async def flush(self) -> None:
        """Write the leads saved in this transaction, by id (the order leads are locked in)."""
        unsaved, self._unsaved = self._unsaved, {}
        if unsaved:
            await self._connection.execute(SAVE_LEADS, [unsaved[key] for key in sorted(unsaved)])

    async def queued(self, limit: int) -> list[Lead]:
        with_room = (reps.c.active, reps.c.open_leads < reps.c.capacity)
        teams_with_room = select(reps.c.team).where(*with_room)
        owned_by_reps_with_room = (
            select(account_owners.c.domain)
            .join(reps, reps.c.id == account_owners.c.rep_id)
            .where(*with_room)
        )
        return await self._claim(
            select(leads)
            .where(
                leads.c.status == str(LeadStatus.QUEUED),
                leads.c.team.in_(teams_with_room)
                | leads.c.account_domain.in_(owned_by_reps_with_room),
            )
            .order_by(leads.c.queued_at)
            .limit(limit)
        )

    async def overdue(self, now: datetime, limit: int) -> list[Lead]:
        return await self._claim(
            select(leads)
            .join(sla_timers, sla_timers.c.lead_id == leads.c.id)
            .where(sla_timers.c.due_at <= now)
            .order_by(sla_timers.c.due_at)
            .limit(limit)
        )

    async def _claim(self, query: Select[Any]) -> list[Lead]:
        rows = await self._connection.execute(query.with_for_update(of=leads, skip_locked=True))
        return [_lead(row) for row in rows]

    async def open_leads_of(self, rep_id: str) -> list[Lead]:
        locked = open_leads_of(rep_id).order_by(None).order_by(leads.c.id).with_for_update()
        await self._connection.execute(locked.with_only_columns(leads.c.id))
        rows = await self._connection.execute(open_leads_of(rep_id))
        return [_lead(row) for row in rows]


class SqlReps:
    """Leads and accounts reps took are written when the transaction commits (`flush`)."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection
        self._took: dict[str, int] = {}
        self._claims: dict[str, str] = {}

    async def lock_for_routing(
        self, teams: Collection[str], domains: Collection[str], rep_ids: Collection[str]
    ) -> Roster:
        if not teams:
            return Roster({})
        # Accounts, then teams' rotations, then reps, each by key: the order every routing
        # transaction takes them in (once), so that none waits for another in a circle.
        if domains:
            keys = sorted({f"{ACCOUNT_LOCK_PREFIX}{domain}" for domain in domains})
            await self._connection.execute(LOCK_ACCOUNTS, {"keys": keys})
        rotations = upsert(team_rotations).values([{"team": team} for team in sorted(teams)])
        await self._connection.execute(
            rotations.on_conflict_do_update(
                index_elements=[team_rotations.c.team], set_={"team": rotations.excluded.team}
            )
        )
        owned = (
            select(account_owners.c.domain, account_owners.c.rep_id)
            .where(account_owners.c.domain.in_(domains))
            .cte("owned")
        )
        owns = select(func.array_agg(owned.c.domain)).where(owned.c.rep_id == reps.c.id)
        query = (
            select(reps, owns.scalar_subquery().label("owns"))
            .where(
                reps.c.team.in_(teams)
                | reps.c.id.in_(rep_ids)
                | reps.c.id.in_(select(owned.c.rep_id))
            )
            .order_by(reps.c.id)
            .with_for_update(of=reps)
        )
        rows = (await self._connection.execute(query)).all()
        owners = {domain: row.id for row in rows for domain in row.owns or ()}
        return Roster.of((_rep(row) for row in rows), owners)

    async def took(self, rep_id: str, unowned_domain: str | None) -> None:
        self._took[rep_id] = self._took.pop(rep_id, 0) + 1  # last in the order of turns
        if unowned_domain:
            self._claims.setdefault(unowned_domain, rep_id)

    async def flush(self) -> None:
        """Count the leads reps got in this transaction and give them their turns, in the
        order they got their last one; then the accounts they took, by domain."""
        took, self._took = self._took, {}
        claims, self._claims = self._claims, {}
        if took:
            await self._connection.execute(
                TAKE_TURNS, {"ids": list(took), "leads": list(took.values())}
            )
        if claims:
            await self._connection.execute(
                upsert(account_owners).on_conflict_do_nothing(),
                [{"domain": domain, "rep_id": claims[domain]} for domain in sorted(claims)],
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


class SqlSlaTimers:
    """Timers are written when the transaction commits (`flush`), all together."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection
        self._due: dict[str, datetime | None] = {}

    async def set(self, lead_id: str, due: datetime | None) -> None:
        self._due[lead_id] = due

    async def flush(self) -> None:
        due, self._due = self._due, {}
        stopped = [lead_id for lead_id, at in due.items() if at is None]
        if stopped:
            await self._connection.execute(
                delete(sla_timers).where(sla_timers.c.lead_id.in_(stopped))
            )
        running = [{"lead_id": key, "due_at": at} for key, at in sorted(due.items()) if at]
        if running:
            await self._connection.execute(SET_TIMERS, running)


class SqlHistory:
    """Hand-offs are logged when the transaction commits (`flush`), all in one statement."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection
        self._handoffs: list[dict[str, Any]] = []

    async def first_time(self, event_ids: Iterable[str]) -> set[str]:
        # By id, like stage changes: two routers given the same records after a rebalance
        # wait for each other in one order.
        rows = [{"event_id": event_id} for event_id in sorted(set(event_ids))]
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
                upsert(stage_history).on_conflict_do_nothing(),
                sorted(rows, key=lambda row: str(row["event_id"])),
            )

    async def log_handoff(self, envelope: HandoffRecorded) -> None:
        routed = envelope.data
        self._handoffs.append(
            {
                "event_id": envelope.id,
                "lead_id": routed.lead_id,
                "rep_id": routed.rep_id or routed.previous_rep_id,
                "team": routed.team,
                "kind": routed.kind,
                "envelope": envelope.model_dump(mode="json"),
            }
        )

    async def flush(self) -> None:
        if self._handoffs:
            await self._connection.execute(insert(handoff_log), self._handoffs)
            self._handoffs = []

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

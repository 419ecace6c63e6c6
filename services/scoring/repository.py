"""Queries of the scoring schema. Set-based: one statement per step of a batch, never per row."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    BindParameter,
    Column,
    Table,
    Text,
    any_,
    bindparam,
    delete,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import UUID, Insert, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.scoring.domain import Return, StoredInteraction
from services.scoring.tables import decay_timers, identities, interactions, leads, returns


def _array(values: Iterable[str], element: Any) -> BindParameter[Any]:
    """One array parameter instead of an IN list: one prepared statement for any size."""
    listed: Any = list(values)
    return bindparam(None, listed, type_=ARRAY(element))


def _uuids(values: Iterable[str]) -> BindParameter[Any]:
    return _array(values, UUID(as_uuid=False))


def _texts(values: Iterable[str]) -> BindParameter[Any]:
    return _array(values, Text)


@dataclass(frozen=True)
class StoredLead:
    id: str
    stage: str | None
    thresholds_met: frozenset[float]
    # The stage entries reported so far (see `StageReached.report_key`); None for a lead
    # stored before they were kept (migration scoring_0004).
    reported: frozenset[str] | None


async def lock_identities(connection: AsyncConnection, keys: Iterable[str]) -> None:
    """Serialise batches that touch the same people (in a fixed order: no deadlocks)."""
    await connection.execute(
        text(
            "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) "
            "FROM (SELECT DISTINCT unnest(CAST(:keys AS text[])) AS k ORDER BY 1) AS keys"
        ),
        {"keys": sorted(set(keys))},
    )


async def known_identities(connection: AsyncConnection, keys: Iterable[str]) -> dict[str, str]:
    rows = await connection.execute(
        select(identities.c.identity, identities.c.lead_id).where(
            identities.c.identity == any_(_texts(set(keys)))
        )
    )
    return {row.identity: row.lead_id for row in rows}


async def merge_leads(connection: AsyncConnection, merged_into: Mapping[str, str]) -> None:
    """Move every identity and interaction of an absorbed lead to the lead it joined."""
    for absorbed, survivor in merged_into.items():
        for table in (identities, interactions):
            await connection.execute(
                update(table).where(table.c.lead_id == absorbed).values(lead_id=survivor)
            )
        await connection.execute(delete(decay_timers).where(decay_timers.c.lead_id == absorbed))
        await connection.execute(delete(leads).where(leads.c.id == absorbed))


def _upsert(table: Table, key: Column[Any], columns: Sequence[str]) -> Insert:
    """One fixed statement for a batch of rows (executemany): compiled once, prepared once."""
    statement = insert(table)
    return statement.on_conflict_do_update(
        index_elements=[key], set_={column: statement.excluded[column] for column in columns}
    )


_UPSERT_IDENTITY = _upsert(identities, identities.c.identity, ["lead_id"])
_ADD_LEAD = insert(leads).on_conflict_do_nothing()
_UPSERT_TIMER = _upsert(decay_timers, decay_timers.c.lead_id, ["due_at"])
LEAD_STATE_COLUMNS = (
    "email",
    "stage",
    "score",
    "engagement",
    "fit",
    "grade",
    "thresholds_met",
    "campaigns",
    "interaction_count",
    "last_event_time",
    "evaluated_at",
    "definitions_version",
    "reported_stages",
    "hand_off_blocked_until",
)
_UPSERT_LEAD = _upsert(leads, leads.c.id, LEAD_STATE_COLUMNS)


async def add_identities(connection: AsyncConnection, mapping: Mapping[str, str]) -> None:
    if mapping:
        await connection.execute(
            _UPSERT_IDENTITY, [{"identity": key, "lead_id": lead} for key, lead in mapping.items()]
        )


async def add_leads(connection: AsyncConnection, lead_ids: Iterable[str]) -> None:
    rows = [{"id": lead} for lead in lead_ids]
    if rows:
        await connection.execute(_ADD_LEAD, rows)


_INTERACTION_COLUMNS = {
    "event_id": "text",
    "lead_id": "uuid",
    "event_time": "timestamptz",
    "channel": "text",
    "type": "text",
    "campaign": "text",
    "url": "text",
    "asset": "text",
    "network": "text",
    "profile": "jsonb",
}
_INSERT_INTERACTIONS = text(
    f"INSERT INTO {interactions.fullname} ({', '.join(_INTERACTION_COLUMNS)}) "  # noqa: S608 - only constant names
    "SELECT * FROM unnest("
    + ", ".join(f"CAST(:{name} AS {kind}[])" for name, kind in _INTERACTION_COLUMNS.items())
    + ") ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
)


async def add_interactions(connection: AsyncConnection, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Store interactions not seen before (one statement); answer the event ids that were new.

    `profile` values are JSON text.
    """
    if not rows:
        return set()
    result = await connection.execute(
        _INSERT_INTERACTIONS, {name: [row[name] for row in rows] for name in _INTERACTION_COLUMNS}
    )
    return {row.event_id for row in result}


def _interaction(row: Any) -> StoredInteraction:
    return StoredInteraction(
        row.event_id,
        row.epoch,
        row.channel,
        row.type,
        row.campaign,
        row.url,
        row.asset,
        row.network,
        row.profile,
    )


async def histories(
    connection: AsyncConnection, lead_ids: Iterable[str]
) -> dict[str, list[StoredInteraction]]:
    """Every stored interaction of these leads."""
    rows = await connection.execute(
        select(
            interactions.c.lead_id,
            interactions.c.event_id,
            text("extract(epoch FROM event_time)::float8 AS epoch"),
            interactions.c.channel,
            interactions.c.type,
            interactions.c.campaign,
            interactions.c.url,
            interactions.c.asset,
            interactions.c.network,
            interactions.c.profile,
        ).where(interactions.c.lead_id == any_(_uuids(set(lead_ids))))
    )
    by_lead: dict[str, list[StoredInteraction]] = defaultdict(list)
    for row in rows:
        by_lead[row.lead_id].append(_interaction(row))
    return by_lead


async def stored_leads(
    connection: AsyncConnection, lead_ids: Iterable[str]
) -> dict[str, StoredLead]:
    """The leads as last stored, locked until the transaction ends."""
    rows = await connection.execute(
        select(leads.c.id, leads.c.stage, leads.c.thresholds_met, leads.c.reported_stages)
        .where(leads.c.id == any_(_uuids(set(lead_ids))))
        .with_for_update()
    )
    return {
        row.id: StoredLead(
            row.id,
            row.stage,
            frozenset(row.thresholds_met),
            frozenset(row.reported_stages) if row.reported_stages is not None else None,
        )
        for row in rows
    }


async def add_returns(connection: AsyncConnection, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Store returns to nurture not seen before; answer the leads they concern."""
    if not rows:
        return set()
    result = await connection.execute(
        insert(returns).values(list(rows)).on_conflict_do_nothing().returning(returns.c.lead_id)
    )
    return set(result.scalars())


async def returns_of(
    connection: AsyncConnection, lead_ids: Iterable[str]
) -> dict[str, list[Return]]:
    rows = await connection.execute(
        select(
            returns.c.lead_id,
            returns.c.event_id,
            returns.c.returned_at,
            returns.c.stage,
            returns.c.resets_score,
            returns.c.eligible_again_at,
        ).where(returns.c.lead_id == any_(_uuids(set(lead_ids))))
    )
    by_lead: dict[str, list[Return]] = defaultdict(list)
    for row in rows:
        eligible = row.eligible_again_at.timestamp() if row.eligible_again_at else None
        by_lead[row.lead_id].append(
            Return(row.event_id, row.returned_at.timestamp(), row.stage, row.resets_score, eligible)
        )
    return by_lead


async def save_leads(connection: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Upsert lead states: rows hold `id` and every column of LEAD_STATE_COLUMNS."""
    if rows:
        await connection.execute(_UPSERT_LEAD, list(rows))


async def set_decay_timers(connection: AsyncConnection, due: Mapping[str, datetime | None]) -> None:
    """One timer per lead: when its score will next decay below a threshold (or none)."""
    cleared = [lead for lead, at in due.items() if at is None]
    if cleared:
        await connection.execute(
            delete(decay_timers).where(decay_timers.c.lead_id == any_(_uuids(cleared)))
        )
    scheduled = [{"lead_id": lead, "due_at": at} for lead, at in due.items() if at is not None]
    if scheduled:
        await connection.execute(_UPSERT_TIMER, scheduled)

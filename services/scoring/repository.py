"""The write side of the scoring schema. Set-based: one statement per step of a batch, never
per row."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

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

from services.scoring.domain import Return, StoredInteraction, StoredLead
from services.scoring.tables import (
    decay_timers,
    identities,
    interactions,
    leads,
    returns,
    shadow_leads,
)
from shared.plumbing import claim_due

T = TypeVar("T")


def _array(values: Iterable[str], element: Any) -> BindParameter[Any]:
    """One array parameter instead of an IN list: one prepared statement for any size."""
    listed: Any = list(values)
    return bindparam(None, listed, type_=ARRAY(element))


def _uuids(values: Iterable[str]) -> BindParameter[Any]:
    return _array(values, UUID(as_uuid=False))


def _texts(values: Iterable[str]) -> BindParameter[Any]:
    return _array(values, Text)


def _upsert(table: Table, key: Column[Any], columns: Sequence[str]) -> Insert:
    """One fixed statement for a batch of rows (executemany): compiled once, prepared once."""
    statement = insert(table)
    return statement.on_conflict_do_update(
        index_elements=[key], set_={column: statement.excluded[column] for column in columns}
    )


_UPSERT_IDENTITY = _upsert(identities, identities.c.identity, ["lead_id"])
_ADD_LEAD = insert(leads).on_conflict_do_nothing()
_SET_TIMERS = text(
    f"WITH cleared AS (DELETE FROM {decay_timers.fullname} "  # noqa: S608 - only constant names
    "WHERE lead_id = ANY(CAST(:cleared AS uuid[]))) "
    f"INSERT INTO {decay_timers.fullname} (lead_id, due_at) "
    "SELECT * FROM unnest(CAST(:leads AS uuid[]), CAST(:due AS timestamptz[])) "
    "ON CONFLICT (lead_id) DO UPDATE SET due_at = excluded.due_at"
)
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
    "timeline_state",
)
_UPSERT_LEAD = _upsert(leads, leads.c.id, LEAD_STATE_COLUMNS)

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
# What scoring reads of a stored interaction, in the order `stored_interaction` takes it:
# read here for the leads of a batch, and streamed for all leads by `queries`.
HISTORY_COLUMNS = (
    "lead_id::text, event_id, extract(epoch FROM event_time)::float8, channel, type, "
    "campaign, url, asset, network, profile"
)


def stored_interaction(row: Sequence[Any]) -> StoredInteraction:
    """A row of HISTORY_COLUMNS as the scoring engine takes it."""
    return StoredInteraction(*row[1:])


def stored_lead(row: Any) -> StoredLead:
    """A row of `leads` as scoring goes on from it."""
    return StoredLead(
        row.id,
        row.stage,
        frozenset(row.thresholds_met),
        frozenset(row.reported_stages) if row.reported_stages is not None else None,
        row.interaction_count,
        row.timeline_state,
        row.definitions_version,
    )


def _return(row: Any) -> Return:
    eligible = row.eligible_again_at.timestamp() if row.eligible_again_at else None
    return Return(row.event_id, row.returned_at.timestamp(), row.stage, row.resets_score, eligible)


def _by_lead(pairs: Iterable[tuple[str, T]]) -> dict[str, list[T]]:
    by_lead: dict[str, list[T]] = defaultdict(list)
    for lead_id, item in pairs:
        by_lead[lead_id].append(item)
    return by_lead


class _OnConnection:
    """A repository: statements run on the connection of the unit of work's transaction."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection


class SqlIdentities(_OnConnection):
    async def lock(self, keys: Iterable[str]) -> None:
        await self._connection.execute(
            text(
                "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) "
                "FROM (SELECT DISTINCT unnest(CAST(:keys AS text[])) AS k ORDER BY 1) AS keys"
            ),
            {"keys": sorted(set(keys))},
        )

    async def known(self, keys: Iterable[str]) -> dict[str, str]:
        rows = await self._connection.execute(
            select(identities.c.identity, identities.c.lead_id).where(
                identities.c.identity == any_(_texts(set(keys)))
            )
        )
        return {row.identity: row.lead_id for row in rows}

    async def add(self, lead_of: Mapping[str, str]) -> None:
        if lead_of:
            await self._connection.execute(
                _UPSERT_IDENTITY,
                [{"identity": key, "lead_id": lead} for key, lead in lead_of.items()],
            )


class SqlLeads(_OnConnection):
    async def add(self, lead_ids: Iterable[str]) -> None:
        rows = [{"id": lead} for lead in lead_ids]
        if rows:
            await self._connection.execute(_ADD_LEAD, rows)

    async def merge(self, merged_into: Mapping[str, str]) -> None:
        for absorbed, survivor in merged_into.items():
            for table in (identities, interactions):
                await self._connection.execute(
                    update(table).where(table.c.lead_id == absorbed).values(lead_id=survivor)
                )
            for gone in (decay_timers, shadow_leads):
                await self._connection.execute(delete(gone).where(gone.c.lead_id == absorbed))
            await self._connection.execute(delete(leads).where(leads.c.id == absorbed))

    async def stored(self, lead_ids: Iterable[str]) -> dict[str, StoredLead]:
        rows = await self._connection.execute(
            select(
                leads.c.id,
                leads.c.stage,
                leads.c.thresholds_met,
                leads.c.reported_stages,
                leads.c.interaction_count,
                leads.c.timeline_state,
                leads.c.definitions_version,
            )
            .where(leads.c.id == any_(_uuids(set(lead_ids))))
            # In id order, so that two instances locking the same leads cannot deadlock.
            .order_by(leads.c.id)
            .with_for_update()
        )
        return {row.id: stored_lead(row) for row in rows}

    async def save(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Upsert lead states: rows hold `id` and every column of LEAD_STATE_COLUMNS."""
        if rows:
            await self._connection.execute(_UPSERT_LEAD, list(rows))

    async def ids_after(self, after: str | None, limit: int) -> list[str]:
        query = select(leads.c.id).order_by(leads.c.id).limit(limit)
        if after is not None:
            query = query.where(leads.c.id > after)
        return list(await self._connection.scalars(query))


class SqlInteractions(_OnConnection):
    async def add(self, rows: Sequence[Mapping[str, Any]]) -> set[str]:
        """One statement for the batch; `profile` values are JSON text."""
        if not rows:
            return set()
        result = await self._connection.execute(
            _INSERT_INTERACTIONS,
            {name: [row[name] for row in rows] for name in _INTERACTION_COLUMNS},
        )
        return {row.event_id for row in result}

    async def histories(self, lead_ids: Iterable[str]) -> dict[str, list[StoredInteraction]]:
        rows = await self._connection.execute(
            select(text(HISTORY_COLUMNS))
            .select_from(interactions)
            .where(interactions.c.lead_id == any_(_uuids(set(lead_ids))))
        )
        return _by_lead((row[0], stored_interaction(row)) for row in rows)


class SqlReturns(_OnConnection):
    async def add(self, rows: Sequence[Mapping[str, Any]]) -> set[str]:
        if not rows:
            return set()
        result = await self._connection.execute(
            insert(returns).values(list(rows)).on_conflict_do_nothing().returning(returns.c.lead_id)
        )
        return set(result.scalars())

    async def of(self, lead_ids: Iterable[str]) -> dict[str, list[Return]]:
        rows = await self._connection.execute(
            select(
                returns.c.lead_id,
                returns.c.event_id,
                returns.c.returned_at,
                returns.c.stage,
                returns.c.resets_score,
                returns.c.eligible_again_at,
            ).where(returns.c.lead_id == any_(_uuids(set(lead_ids))))
        )
        return _by_lead((row.lead_id, _return(row)) for row in rows)


class SqlDecayTimers(_OnConnection):
    async def set(self, due: Mapping[str, datetime | None]) -> None:
        """One statement: the timers cleared are deleted, the others set."""
        if due:
            scheduled = {lead: at for lead, at in due.items() if at is not None}
            await self._connection.execute(
                _SET_TIMERS,
                {
                    "cleared": [lead for lead, at in due.items() if at is None],
                    "leads": list(scheduled),
                    "due": list(scheduled.values()),
                },
            )

    async def claim_due(self, now: datetime, limit: int) -> list[str]:
        return await claim_due(self._connection, decay_timers, now, limit)

"""The tables every consuming service keeps in its own schema: stored offsets, an outbox,
and timers (rows with a due time, claimed by whichever instance gets there first)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    func,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection


def offsets_table(metadata: MetaData) -> Table:
    """Where each consumer group is in each partition, and which log epoch that offset is in."""
    return Table(
        "consumer_offsets",
        metadata,
        Column("consumer_group", Text, primary_key=True),
        Column("topic", Text, primary_key=True),
        Column("partition", Integer, primary_key=True),
        Column("next_offset", BigInteger, nullable=False),
        Column("log_epoch", Text),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


def outbox_table(metadata: MetaData) -> Table:
    """Events written in the same transaction as the state they describe, published after."""
    table = Table(
        "outbox",
        metadata,
        Column("id", BigInteger, primary_key=True, autoincrement=True),
        Column("event_id", Text, nullable=False, unique=True),
        Column("topic", Text, nullable=False),
        Column("key", LargeBinary),
        Column("value", LargeBinary, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("sent_at", DateTime(timezone=True)),
    )
    Index("outbox_pending", table.c.id, postgresql_where=text("sent_at IS NULL"))
    return table


async def claim_due(
    connection: AsyncConnection, timers: Table, now: datetime, limit: int
) -> list[str]:
    """Lead ids whose timer in `timers` (lead_id, due_at) is due, oldest first, locked for
    this transaction; other instances skip them (FOR UPDATE SKIP LOCKED)."""
    rows = await connection.execute(
        select(timers.c.lead_id)
        .where(timers.c.due_at <= now)
        .order_by(timers.c.due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [row.lead_id for row in rows]

"""The tables every consuming service keeps in its own schema: stored offsets and an outbox."""

from __future__ import annotations

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
    text,
)


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

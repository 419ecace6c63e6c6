"""The routing transaction over PostgreSQL, with the router's repositories on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction

from services.router.outbound.store import RouterOutbox, SqlNotices
from services.router.repository import SqlHistory, SqlLeads, SqlReps, SqlSlaTimers
from services.router.tables import consumer_offsets, outbox
from shared.unit_of_work import SqlTransaction

CONSUMER_GROUP = "leadflow-router"


class SqlUnitOfWork(SqlTransaction):
    """A transaction that may move leads between reps. It locks what it moves, in one order
    that every such transaction keeps: the leads (by id), their accounts, the rotations of
    their teams (by key), then the reps it may give them to (by id). So routers on many
    instances run side by side, no rep is overbooked, and none waits for another in a
    circle."""

    def __init__(self, connection: AsyncConnection, transaction: AsyncTransaction) -> None:
        super().__init__(
            connection,
            transaction,
            outbox=outbox,
            consumer_offsets=consumer_offsets,
            consumer_group=CONSUMER_GROUP,
        )
        self.leads = SqlLeads(connection)
        self.reps = SqlReps(connection)
        self.timers = SqlSlaTimers(connection)
        self.history = SqlHistory(connection)
        self.outbox: RouterOutbox = RouterOutbox(connection)
        self.notices = SqlNotices(connection)

    async def commit(self) -> None:
        """Write what the transaction did, a statement per table, then commit."""
        await self.leads.flush()
        await self.reps.flush()
        await self.timers.flush()
        await self.outbox.flush()
        await self.history.flush()
        await self.notices.flush()
        await super().commit()


@asynccontextmanager
async def unit_of_work(engine: AsyncEngine) -> AsyncIterator[SqlUnitOfWork]:
    """A routing transaction; closing the connection rolls back what was not committed."""
    async with engine.connect() as connection:
        yield SqlUnitOfWork(connection, await connection.begin())

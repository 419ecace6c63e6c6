"""The routing transaction over PostgreSQL, with the router's repositories on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction

from services.router.outbound.store import RouterOutbox, SqlNotices
from services.router.repository import (
    SqlHistory,
    SqlLeads,
    SqlReps,
    SqlSlaTimers,
    take_routing_lock,
)
from services.router.tables import consumer_offsets, outbox
from shared.unit_of_work import SqlTransaction

CONSUMER_GROUP = "leadflow-router"


class SqlUnitOfWork(SqlTransaction):
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
        self.outbox = RouterOutbox(connection)
        self.notices = SqlNotices(connection)


@asynccontextmanager
async def unit_of_work(engine: AsyncEngine) -> AsyncIterator[SqlUnitOfWork]:
    """A transaction that may move leads between reps; closing the connection rolls back
    what was not committed.

    Such transactions run one at a time across all router instances (an advisory lock
    taken before any row lock): no rep is ever overbooked by two routers, and no two
    transactions can lock reps and leads in opposite orders and deadlock.
    """
    async with engine.connect() as connection:
        transaction = await connection.begin()
        await take_routing_lock(connection)
        yield SqlUnitOfWork(connection, transaction)

"""The routing transaction over PostgreSQL, with the router's repositories on it."""

from __future__ import annotations

from contextlib import AsyncExitStack
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction

from services.router.repository import (
    SqlHistory,
    SqlLeads,
    SqlOutbox,
    SqlReps,
    SqlSlaTimers,
    take_routing_lock,
)
from services.router.tables import consumer_offsets
from shared.consumer import Batch, save_positions

CONSUMER_GROUP = "leadflow-router"


class SqlUnitOfWork:
    """A transaction that may move leads between reps.

    Such transactions run one at a time across all router instances (an advisory lock
    taken before any row lock): no rep is ever overbooked by two routers, and no two
    transactions can lock reps and leads in opposite orders and deadlock.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._exits = AsyncExitStack()

    async def __aenter__(self) -> Self:
        connection = await self._exits.enter_async_context(self._engine.connect())
        try:
            self._transaction: AsyncTransaction = await connection.begin()
            await take_routing_lock(connection)
        except BaseException:
            await self._exits.aclose()
            raise
        self._connection: AsyncConnection = connection
        self.leads = SqlLeads(connection)
        self.reps = SqlReps(connection)
        self.timers = SqlSlaTimers(connection)
        self.history = SqlHistory(connection)
        self.outbox = SqlOutbox(connection)
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._exits.aclose()  # closing the connection rolls back what was not committed

    async def save_positions(self, batch: Batch) -> None:
        await save_positions(self._connection, consumer_offsets, CONSUMER_GROUP, batch)

    async def commit(self) -> None:
        await self._transaction.commit()

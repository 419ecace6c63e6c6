"""The scoring transaction over PostgreSQL, with scoring's repositories on it."""

from __future__ import annotations

from contextlib import AsyncExitStack
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction

from services.scoring.repository import (
    SqlDecayTimers,
    SqlIdentities,
    SqlInteractions,
    SqlLeads,
    SqlOutbox,
    SqlReturns,
)
from services.scoring.tables import consumer_offsets
from shared.consumer import Batch, save_positions

CONSUMER_GROUP = "leadflow-scoring"


class SqlUnitOfWork:
    """One transaction of the scoring schema; what is not committed is rolled back."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._exits = AsyncExitStack()

    async def __aenter__(self) -> Self:
        connection = await self._exits.enter_async_context(self._engine.connect())
        try:
            self._transaction: AsyncTransaction = await connection.begin()
        except BaseException:
            await self._exits.aclose()
            raise
        self._connection: AsyncConnection = connection
        self.identities = SqlIdentities(connection)
        self.leads = SqlLeads(connection)
        self.interactions = SqlInteractions(connection)
        self.returns = SqlReturns(connection)
        self.timers = SqlDecayTimers(connection)
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

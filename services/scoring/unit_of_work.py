"""The scoring transaction over PostgreSQL, with scoring's repositories on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

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
    def __init__(self, connection: AsyncConnection, transaction: AsyncTransaction) -> None:
        self._connection = connection
        self._transaction = transaction
        self.identities = SqlIdentities(connection)
        self.leads = SqlLeads(connection)
        self.interactions = SqlInteractions(connection)
        self.returns = SqlReturns(connection)
        self.timers = SqlDecayTimers(connection)
        self.outbox = SqlOutbox(connection)

    async def save_positions(self, batch: Batch) -> None:
        await save_positions(self._connection, consumer_offsets, CONSUMER_GROUP, batch)

    async def commit(self) -> None:
        await self._transaction.commit()


@asynccontextmanager
async def unit_of_work(engine: AsyncEngine) -> AsyncIterator[SqlUnitOfWork]:
    """One transaction of the scoring schema; closing the connection rolls back what was
    not committed."""
    async with engine.connect() as connection:
        yield SqlUnitOfWork(connection, await connection.begin())

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
    SqlReturns,
)
from services.scoring.shadow_repository import SqlSalesVerdicts, SqlShadowRuns
from services.scoring.tables import consumer_offsets, outbox
from shared.unit_of_work import SqlTransaction

CONSUMER_GROUP = "leadflow-scoring"


class SqlUnitOfWork(SqlTransaction):
    def __init__(self, connection: AsyncConnection, transaction: AsyncTransaction) -> None:
        super().__init__(
            connection,
            transaction,
            outbox=outbox,
            consumer_offsets=consumer_offsets,
            consumer_group=CONSUMER_GROUP,
        )
        self.identities = SqlIdentities(connection)
        self.leads = SqlLeads(connection)
        self.interactions = SqlInteractions(connection)
        self.returns = SqlReturns(connection)
        self.timers = SqlDecayTimers(connection)
        self.shadow_runs = SqlShadowRuns(connection)
        self.verdicts = SqlSalesVerdicts(connection)


@asynccontextmanager
async def unit_of_work(engine: AsyncEngine) -> AsyncIterator[SqlUnitOfWork]:
    """One transaction of the scoring schema; closing the connection rolls back what was
    not committed."""
    async with engine.connect() as connection:
        yield SqlUnitOfWork(connection, await connection.begin())

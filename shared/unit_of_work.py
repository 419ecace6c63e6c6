"""What every service's unit of work has: one PostgreSQL transaction in which the
service's results, its outbox rows and the offsets it consumed are kept together."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncTransaction

from shared.consumer import Batch, save_positions
from shared.outbox import add_to_outbox


class Outbox(Protocol):
    async def add(self, rows: Sequence[dict[str, Any]]) -> None:
        """Rows of `shared.outbox.outbox_row`, published after the commit."""
        ...


class Transaction(Protocol):
    async def save_positions(self, batch: Batch) -> None:
        """Where the consumed batch ends, stored with its results."""
        ...

    async def commit(self) -> None:
        """Keep what the transaction did; without it, nothing is kept."""
        ...


class SqlOutbox:
    def __init__(self, connection: AsyncConnection, table: Table) -> None:
        self._connection = connection
        self._table = table

    async def add(self, rows: Sequence[dict[str, Any]]) -> None:
        await add_to_outbox(self._connection, self._table, rows)


class SqlTransaction:
    """A service's open transaction; closing its connection rolls back what was not
    committed. Subclasses add the service's repositories on `connection`."""

    def __init__(
        self,
        connection: AsyncConnection,
        transaction: AsyncTransaction,
        *,
        outbox: Table,
        consumer_offsets: Table,
        consumer_group: str,
    ) -> None:
        self.connection = connection
        self._transaction = transaction
        self.outbox = SqlOutbox(connection, outbox)
        self._offsets = consumer_offsets
        self._group = consumer_group

    async def save_positions(self, batch: Batch) -> None:
        await save_positions(self.connection, self._offsets, self._group, batch)

    async def commit(self) -> None:
        await self._transaction.commit()

"""What every fake storage has: committed data, and a unit of work that works on a copy
of it and keeps the copy only on commit, as a transaction does."""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from shared.consumer import Batch


@dataclass
class CommittedData:
    outbox: list[dict[str, Any]] = field(default_factory=list)
    positions: list[Batch] = field(default_factory=list)


DataT = TypeVar("DataT", bound=CommittedData)


class FakeOutbox:
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self._rows = rows

    async def add(self, rows: Sequence[dict[str, Any]]) -> None:
        self._rows.extend(rows)


@dataclass
class FakeStore(Generic[DataT]):
    data: DataT
    commits: int = 0

    def published(self, topic: str) -> list[dict[str, Any]]:
        """The envelopes committed to the outbox for `topic`, in order, as JSON."""
        return [json.loads(row["value"]) for row in self.data.outbox if row["topic"] == topic]


class FakeTransaction(Generic[DataT]):
    def __init__(self, store: FakeStore[DataT]) -> None:
        self._store = store
        self.data = copy.deepcopy(store.data)
        self.outbox = FakeOutbox(self.data.outbox)

    async def save_positions(self, batch: Batch) -> None:
        self.data.positions.append(batch)

    async def commit(self) -> None:
        self._store.data = copy.deepcopy(self.data)
        self._store.commits += 1

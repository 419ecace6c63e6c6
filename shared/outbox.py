"""The transactional outbox: events are written with the state change, published after.

`OutboxRelay` publishes pending rows in id order and marks them sent. A crash between the
publish and the mark publishes the same rows again, with the same event ids, which every
consumer deduplicates. One relay per schema publishes at a time (an advisory lock), so
the order of a lead's events survives several instances.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from sqlalchemy import (
    Table,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.events import CloudEvent
from shared.failpoints import failpoint
from shared.kafka import send_in_batches

log = logging.getLogger(__name__)

PURGE_SENT_AFTER = "1 day"
PURGE_SENT_EVERY_ROUNDS = 1_000
IDLE_POLL_SECONDS = 0.5


def outbox_row(event: CloudEvent[Any], topic: str, key: str | None) -> dict[str, Any]:
    return {
        "event_id": event.id,
        "topic": topic,
        "key": key.encode() if key is not None else None,
        "value": event.model_dump_json().encode(),
    }


async def add_to_outbox(
    connection: AsyncConnection, table: Table, rows: Sequence[dict[str, Any]]
) -> None:
    if rows:
        await connection.execute(insert(table), list(rows))


class OutboxRelay:
    def __init__(
        self,
        engine: AsyncEngine,
        table: Table,
        producer: AIOKafkaProducer,
        *,
        batch_size: int = 2_000,
    ) -> None:
        self._engine = engine
        self._table = table
        self._producer = producer
        self._batch_size = batch_size
        self._lock_key = zlib.crc32(f"{table.schema}.{table.name}".encode())
        self._wakeup = asyncio.Event()

    def wake(self) -> None:
        """Tell the relay there is something to publish now, rather than at the next poll."""
        self._wakeup.set()

    async def publish_pending(self) -> int:
        """Publish one batch of pending rows; answer how many were published."""
        table = self._table
        # One relay at a time publishes a table (so rows go out in order): the lock is an
        # uncorrelated subquery, taken once per statement; not taken, no rows.
        holds_lock = select(func.pg_try_advisory_xact_lock(self._lock_key)).scalar_subquery()
        async with self._engine.begin() as connection:
            rows = (
                await connection.execute(
                    select(table.c.id, table.c.topic, table.c.key, table.c.value)
                    .where(holds_lock, table.c.sent_at.is_(None))
                    .order_by(table.c.id)
                    .limit(self._batch_size)
                )
            ).all()
            if not rows:
                return 0
            await send_in_batches(self._producer, ((r.topic, r.key, r.value) for r in rows))
            failpoint("outbox.after_publish")
            await connection.execute(
                update(table)
                .where(table.c.id.in_([row.id for row in rows]))
                .values(sent_at=func.now())
            )
        return len(rows)

    async def resend_retained(self) -> int:
        """Publish again every row still kept after it was sent (the last day's): the
        broker lost its log, and what no consumer had read yet went with it. Consumers
        deduplicate by event id, so sending twice costs nothing."""
        table = self._table
        async with self._engine.begin() as connection:
            result = await connection.execute(
                update(table).where(table.c.sent_at.is_not(None)).values(sent_at=None)
            )
        log.warning(
            "broker lost its log; publishing retained outbox rows again",
            extra={"table": table.fullname, "rows": result.rowcount},
        )
        self.wake()
        return int(result.rowcount)

    async def purge_sent(self) -> None:
        table = self._table
        async with self._engine.begin() as connection:
            await connection.execute(
                delete(table).where(
                    table.c.sent_at < func.now() - text(f"interval '{PURGE_SENT_AFTER}'")
                )
            )

    async def run(self, stopping: asyncio.Event) -> None:
        """Publish until `stopping` is set. A failure ends the run: the supervisor (see
        `shared.supervise`) logs it, pauses through a database outage and starts it again."""
        rounds = 0
        while not stopping.is_set():
            # Cleared before looking, so a commit during this round wakes the next one.
            self._wakeup.clear()
            published = await self.publish_pending()
            rounds += 1
            if rounds % PURGE_SENT_EVERY_ROUNDS == 0:
                await self.purge_sent()
            if published == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), IDLE_POLL_SECONDS)

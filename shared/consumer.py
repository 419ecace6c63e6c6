"""A Kafka consumer whose offsets live in PostgreSQL, stored with the results they produced.

On every assignment it resumes from the offsets the service stored, after checking that
the partition is still the same log: the embedded broker forgets everything when it
restarts and numbers offsets from 0 again, so a stored offset could silently point past
every new record. Each partition starts with a marker record (written when `leadflow
topics` creates it); its id, stored beside the offset, names the log's incarnation. A
different marker (or an offset beyond the end of a log without one) means the log was
reset: the consumer rewinds to the beginning and lets deduplication by event id absorb
what it had already seen. A partition whose first record is not a marker (someone produced
before the markers were written) is named by that first record instead.

Topics exist only when we create them (see `shared.kafka`): a consumer that finds a topic
missing, as after a broker that came back empty, creates it with its markers.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from sqlalchemy import Table, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.events import LOG_STARTED_TYPE
from shared.kafka import ensure_topics
from shared.settings import Settings
from shared.topics import CATALOG

log = logging.getLogger(__name__)

FIRST_RECORD_WAIT_SECONDS = 3.0
TOPIC_CHECK_SECONDS = 2.0
# A join answers within seconds (Tansu holds a new group's first one for half the session
# timeout). One seen never to complete after a member died and another left: start over.
JOIN_WITHIN_SECONDS = 15.0


class GroupJoinStuck(RuntimeError):
    """The consumer group never answered this member's join: the consumer starts over."""


@dataclass(frozen=True)
class StoredPosition:
    next_offset: int
    log_epoch: str | None


@dataclass(frozen=True)
class LogStart:
    """What the beginning of a partition shows: its marker id, and how far the log reaches."""

    epoch: str | None
    high_watermark: int


def resume_offset(stored: StoredPosition | None, start: LogStart) -> tuple[int, bool]:
    """Where to continue reading, and whether the log was found reset since we stored it."""
    if stored is None:
        return 0, False
    if start.epoch is not None and stored.log_epoch is not None:
        if start.epoch != stored.log_epoch:
            return 0, True
        return stored.next_offset, False
    if stored.next_offset > start.high_watermark:
        return 0, True
    return stored.next_offset, False


def log_identity(record: ConsumerRecord) -> str:
    """What names the log that starts with this record: its marker id, else its own id."""
    envelope_id, is_marker = _envelope_id(record)
    if envelope_id is None:
        return "bytes:" + hashlib.sha256(record.value or b"").hexdigest()[:32]
    return envelope_id if is_marker else f"record:{envelope_id}"


def log_epoch_of(record: ConsumerRecord) -> str | None:
    """The marker id if this is a partition's first-record marker."""
    envelope_id, is_marker = _envelope_id(record)
    return envelope_id if is_marker else None


def _envelope_id(record: ConsumerRecord) -> tuple[str | None, bool]:
    """The record's envelope id, and whether it is a log marker."""
    try:
        envelope = json.loads(record.value or b"")
    except (ValueError, UnicodeDecodeError):
        return None, False
    if not isinstance(envelope, dict) or not isinstance(envelope.get("id"), str):
        return None, False
    return envelope["id"], envelope.get("type") == LOG_STARTED_TYPE


async def read_log_starts(
    bootstrap: str, partitions: list[TopicPartition]
) -> dict[TopicPartition, LogStart]:
    """Read the first record and the high watermark of each partition (no group, no commit)."""
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await reader.start()
    firsts: dict[TopicPartition, ConsumerRecord] = {}
    try:
        reader.assign(partitions)
        await reader.seek_to_beginning(*partitions)
        deadline = asyncio.get_running_loop().time() + FIRST_RECORD_WAIT_SECONDS
        while len(firsts) < len(partitions) and asyncio.get_running_loop().time() < deadline:
            fetched = await reader.getmany(timeout_ms=200, max_records=1)
            for tp, records in fetched.items():
                firsts.setdefault(tp, records[0])
                reader.pause(tp)
            if all(reader.highwater(tp) is not None for tp in partitions) and all(
                tp in firsts or not reader.highwater(tp) for tp in partitions
            ):
                break
        return {
            tp: LogStart(
                log_identity(firsts[tp]) if tp in firsts else None, reader.highwater(tp) or 0
            )
            for tp in partitions
        }
    finally:
        await reader.stop()


@dataclass
class Batch:
    """Records fetched together, the offsets to store after them, and their logs' epochs."""

    records: list[ConsumerRecord]
    next_offsets: dict[TopicPartition, int]
    epochs: Mapping[TopicPartition, str | None]


async def load_positions(
    engine: AsyncEngine, table: Table, group: str, partitions: list[TopicPartition]
) -> dict[TopicPartition, StoredPosition]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(table).where(
                table.c.consumer_group == group,
                table.c.topic.in_({tp.topic for tp in partitions}),
            )
        )
        return {
            TopicPartition(row.topic, row.partition): StoredPosition(row.next_offset, row.log_epoch)
            for row in rows
        }


async def save_positions(
    connection: AsyncConnection, table: Table, group: str, batch: Batch
) -> None:
    """Store where this batch ends, in the caller's transaction (with its results).

    In partition order: two instances storing the same partitions' offsets after a
    rebalance wait for each other in one order, never in a circle."""
    positions = sorted(batch.next_offsets.items())
    # One fixed statement whatever the number of partitions: compiled and prepared once.
    await connection.execute(
        text(
            f"INSERT INTO {table.fullname} "  # noqa: S608 - only constant names
            "(consumer_group, topic, partition, next_offset, log_epoch) "
            "SELECT :group, topic, partition, next_offset, log_epoch FROM unnest("
            "CAST(:topics AS text[]), CAST(:partitions AS int[]), "
            "CAST(:offsets AS bigint[]), CAST(:epochs AS text[])"
            ") WITH ORDINALITY AS p(topic, partition, next_offset, log_epoch, n) ORDER BY n "
            "ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET "
            "next_offset = excluded.next_offset, log_epoch = excluded.log_epoch, "
            "updated_at = excluded.updated_at"
        ),
        {
            "group": group,
            "topics": [tp.topic for tp, _ in positions],
            "partitions": [tp.partition for tp, _ in positions],
            "offsets": [offset for _, offset in positions],
            "epochs": [batch.epochs.get(tp) for tp, _ in positions],
        },
    )


BatchHandler = Callable[[Batch], Awaitable[None]]


@dataclass
class StoredOffsetConsumer:
    """Consumes `topics` in consumer group `group`, handing each fetched batch to `handle`."""

    settings: Settings
    engine: AsyncEngine
    offsets: Table
    group: str
    topics: tuple[str, ...]
    handle: BatchHandler
    # Called once a reset log is noticed: the service publishes again what it had sent.
    on_log_reset: Callable[[], Awaitable[object]] | None = None
    max_records: int = 2_000
    epochs: dict[TopicPartition, str | None] = field(default_factory=dict)
    assignment_failure: Exception | None = None
    joined: bool = False

    async def _resume(self, consumer: AIOKafkaConsumer, assigned: list[TopicPartition]) -> None:
        if not assigned:
            return
        stored = await load_positions(self.engine, self.offsets, self.group, assigned)
        starts = await read_log_starts(self.settings.require_broker(), assigned)
        any_reset = False
        for tp in assigned:
            offset, was_reset = resume_offset(stored.get(tp), starts[tp])
            if was_reset:
                any_reset = True
                log.warning(
                    "log reset detected; rewinding to the beginning",
                    extra={"topic": tp.topic, "partition": tp.partition, "group": self.group},
                )
            self.epochs[tp] = starts[tp].epoch
            consumer.seek(tp, offset)
        if any_reset and self.on_log_reset is not None:
            await self.on_log_reset()

    async def run(self, stopping: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.require_broker(),
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 1024 * 1024,
            fetch_max_wait_ms=self.settings.fetch_max_wait_ms,
            # A member that died (kill -9) holds its partitions until this expires; the
            # broker's minimum (group.min.session.timeout.ms) is 6 s by default.
            session_timeout_ms=6_000,
            heartbeat_interval_ms=1_000,
        )
        outer = self

        class Resume(ConsumerRebalanceListener):  # type: ignore[misc]
            async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
                """Nothing to flush: every handled batch is already committed with its offsets."""

            async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
                outer.joined = True
                # aiokafka may fetch from the reset position while we look up ours: hold
                # the partitions until they are seeked to where this service stopped.
                consumer.pause(*assigned)
                try:
                    await outer._resume(consumer, list(assigned))
                except Exception as error:
                    # aiokafka would log it and read from the start: stay paused, and let
                    # the run end with it, so the supervisor waits for the database.
                    outer.assignment_failure = error
                    return
                consumer.resume(*assigned)
                log.info(
                    "partitions assigned",
                    extra={
                        "group": outer.group,
                        "partitions": sorted(f"{tp.topic}:{tp.partition}" for tp in assigned),
                    },
                )

        await self._ensure_topics()
        consumer.subscribe(list(self.topics), listener=Resume())
        self.joined = False
        await consumer.start()
        try:
            clock = asyncio.get_running_loop().time
            next_check = clock() + TOPIC_CHECK_SECONDS
            join_by = clock() + JOIN_WITHIN_SECONDS
            while not stopping.is_set():
                if self.assignment_failure is not None:
                    failure, self.assignment_failure = self.assignment_failure, None
                    raise failure
                if not self.joined and clock() > join_by:
                    raise GroupJoinStuck(
                        f"{self.group} was assigned nothing within {JOIN_WITHIN_SECONDS:g} s"
                    )
                if clock() >= next_check:
                    if not {topic.name for topic in CATALOG} <= await consumer.topics():
                        await self._ensure_topics()
                    next_check = clock() + TOPIC_CHECK_SECONDS
                fetched = await consumer.getmany(timeout_ms=200, max_records=self.max_records)
                if not fetched:
                    continue
                for tp, batch in fetched.items():
                    if batch[0].offset == 0:  # a log we rewound to while it was empty
                        self.epochs[tp] = log_identity(batch[0])
                records = [record for batch in fetched.values() for record in batch]
                next_offsets = {tp: batch[-1].offset + 1 for tp, batch in fetched.items()}
                await self.handle(Batch(records, next_offsets, dict(self.epochs)))
        finally:
            await consumer.stop()

    async def _ensure_topics(self) -> None:
        """Every topic, not only ours: the outbox relay publishes to the others."""
        await ensure_topics(self.settings)

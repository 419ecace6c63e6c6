"""What the end-to-end benchmark (`bench/e2e.py`) observes, and the timestamps it collects.

An independent consumer of `lead.lifecycle` and `lead.handoffs` (no group, every partition,
from the beginning), the floor (a raw Kafka round trip on the same broker), how late this
process's event loop wakes a sleeper, and what the services' own records say: the outbox
rows of scoring and the router (PostgreSQL's now() of their transactions) and scoring's
batch metrics. Not a benchmark itself.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import NewTopic
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bench.servers import Server, get
from shared.kafka import admin_client
from shared.settings import Settings
from shared.topics import HANDOFFS, LIFECYCLE

OBSERVER_FETCH_WAIT_MS = 10
SERVICE_FETCH_WAIT_MS = 500  # aiokafka's default; StoredOffsetConsumer does not set it
SCRATCH_TOPIC = "bench.e2e.scratch"
ROUND_TRIP_TIMEOUT_SECONDS = 10.0
LAG_TICK_SECONDS = 0.01

STAGE_CHANGED = "leadflow.lead.stage_changed"
ASSIGNED = "leadflow.handoff.assigned"
QUEUED = "leadflow.handoff.queued"
HAND_OFF_MARK = b'"is_hand_off":true'  # cheap filter before decoding a lifecycle record


# --- the observer: lead.lifecycle and lead.handoffs, as a dashboard would read them -----------


@dataclass(frozen=True)
class Seen:
    event_id: str
    lead_id: str
    produced: float  # the record's CreateTime (epoch seconds), set by the producing client
    received: float  # when getmany handed it to this process (epoch seconds)
    decided: float | None = None  # the assigned event's `time`: when the router chose


class Observer:
    """Reads every partition of lead.lifecycle and lead.handoffs without a group."""

    def __init__(self, bootstrap: str) -> None:
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            enable_auto_commit=False,
            fetch_max_wait_ms=OBSERVER_FETCH_WAIT_MS,
            client_id="bench-e2e-observer",
        )
        self.hand_offs: dict[str, Seen] = {}  # email -> the hand-off stage change
        self.assigned: dict[str, Seen] = {}  # lead id -> the first assigned event
        self.queued = 0
        self.records = 0
        self.arrived = asyncio.Event()

    async def start(self) -> None:
        await self.consumer.start()
        await self.consumer.topics()  # metadata, so the partitions are known
        partitions = [
            TopicPartition(topic, partition)
            for topic in (LIFECYCLE.name, HANDOFFS.name)
            for partition in sorted(self.consumer.partitions_for_topic(topic) or ())
        ]
        self.consumer.assign(partitions)
        await self.consumer.seek_to_beginning(*partitions)

    async def stop(self) -> None:
        await self.consumer.stop()

    def _note(self, record: ConsumerRecord, received: float) -> None:
        value: bytes = record.value or b""
        produced = record.timestamp / 1000
        if record.topic == LIFECYCLE.name:
            if HAND_OFF_MARK not in value:
                return
            envelope = json.loads(value)
            data = envelope.get("data") or {}
            email = (data.get("profile") or {}).get("email")
            if envelope.get("type") == STAGE_CHANGED and data.get("is_hand_off") and email:
                seen = Seen(envelope["id"], data["lead_id"], produced, received)
                self.hand_offs.setdefault(email, seen)
            return
        envelope = json.loads(value)
        if envelope.get("type") == ASSIGNED:
            decided = datetime.fromisoformat(envelope["time"]).timestamp()
            lead_id = envelope["data"]["lead_id"]
            seen = Seen(envelope["id"], lead_id, produced, received, decided)
            self.assigned.setdefault(lead_id, seen)
        elif envelope.get("type") == QUEUED:
            self.queued += 1

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            fetched = await self.consumer.getmany(timeout_ms=100)
            received = time.time()
            for records in fetched.values():
                self.records += len(records)
                for record in records:
                    self._note(record, received)
            if fetched:
                self.arrived.set()

    def assigned_for(self, email: str) -> Seen | None:
        hand_off = self.hand_offs.get(email)
        return self.assigned.get(hand_off.lead_id) if hand_off else None


async def until(
    condition: Callable[[], bool], observer: Observer, task: asyncio.Task[None], seconds: float
) -> bool:
    """Wait until `condition` holds (checked as records arrive), at most `seconds`."""
    deadline = time.perf_counter() + seconds
    while not condition():
        if task.done():
            task.result()  # the observer only ends early by failing: raise its error
            raise RuntimeError("the observer stopped")
        left = deadline - time.perf_counter()
        if left <= 0:
            return False
        observer.arrived.clear()
        with suppress(TimeoutError):
            await asyncio.wait_for(observer.arrived.wait(), min(left, 0.1))
    return True


# --- the floor: a raw Kafka round trip --------------------------------------------------------


async def create_scratch_topic(settings: Settings) -> None:
    async with admin_client(settings) as admin:
        if SCRATCH_TOPIC not in set(await admin.list_topics()):
            await admin.create_topics([NewTopic(SCRATCH_TOPIC, 1, 1)])


async def round_trips(
    settings: Settings,
    count: int,
    fetch_wait_ms: int,
    *,
    gap: float = 0.0,
    stop: asyncio.Event | None = None,
) -> list[float]:
    """Produce one record (acks=all), read it back; `count` times, one after another."""
    bootstrap = settings.require_broker()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=fetch_wait_ms
    )
    await producer.start()
    await consumer.start()
    samples: list[float] = []
    try:
        scratch = TopicPartition(SCRATCH_TOPIC, 0)
        consumer.assign([scratch])
        await consumer.seek_to_end(scratch)
        for number in range(count):
            if stop is not None and stop.is_set():
                break
            marker = f"{uuid.uuid4()}-{number}".encode()
            started = time.perf_counter()
            await (await producer.send(SCRATCH_TOPIC, marker, partition=0))
            async with asyncio.timeout(ROUND_TRIP_TIMEOUT_SECONDS):
                while True:
                    fetched = await consumer.getmany(scratch, timeout_ms=1_000)
                    if any(r.value == marker for r in fetched.get(scratch, [])):
                        break
            samples.append(time.perf_counter() - started)
            if gap:
                if stop is None:
                    await asyncio.sleep(gap)
                else:
                    with suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), gap)
    finally:
        await consumer.stop()
        await producer.stop()
    return samples


async def loop_lag(stop: asyncio.Event) -> list[float]:
    """How late this process's event loop wakes a sleeper (it delays what we observe)."""
    lags = []
    while not stop.is_set():
        started = time.perf_counter()
        await asyncio.sleep(LAG_TICK_SECONDS)
        lags.append(time.perf_counter() - started - LAG_TICK_SECONDS)
    return lags


# --- what the services' own records say: outbox rows, scoring's batch metrics ---------------


@dataclass(frozen=True)
class OutboxTimes:
    created: float  # now() of the transaction that wrote the row (the consumer's batch)
    sent: float | None  # now() of the relay transaction that published it


async def outbox_times(database_url: str, schema: str, ids: list[str]) -> dict[str, OutboxTimes]:
    """When each event's outbox row was written and picked up by the relay (epoch seconds)."""
    engine = create_async_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text(
                    "SELECT event_id, extract(epoch FROM created_at)::float8, "
                    f"extract(epoch FROM sent_at)::float8 FROM {schema}.outbox "
                    "WHERE event_id = ANY(:ids)"
                ),
                {"ids": ids},
            )
            return {row[0]: OutboxTimes(row[1], row[2]) for row in rows}
    finally:
        await engine.dispose()


BATCH_METRIC = "leadflow_scoring_batch_seconds"
RECORDS_METRIC = 'leadflow_scoring_records_total{kind="interaction"}'


async def scoring_metrics(scoring: Server) -> dict[str, float]:
    """Scoring's batch histogram and record counter, from its /metrics page."""
    status, body = await get(scoring.port, "/metrics")
    if status != 200:
        return {}
    values = {}
    for line in body.decode().splitlines():
        name, _, value = line.rpartition(" ")
        if name.startswith((BATCH_METRIC, RECORDS_METRIC)):
            with suppress(ValueError):
                values[name] = float(value)
    return values


@dataclass(frozen=True)
class BatchStats:
    """Scoring's consumed batches during the load (differences of its /metrics)."""

    batches: float
    records: float
    seconds: float
    buckets: list[tuple[float, float]]  # (upper bound in seconds, batches at most that long)

    @classmethod
    def between(cls, before: dict[str, float], after: dict[str, float]) -> BatchStats:
        def delta(name: str) -> float:
            return after.get(name, 0.0) - before.get(name, 0.0)

        buckets = []
        for name in after:
            if name.startswith(f"{BATCH_METRIC}_bucket"):
                bound = name.partition('le="')[2].partition('"')[0]
                buckets.append((float(bound), delta(name)))
        return cls(
            delta(f"{BATCH_METRIC}_count"),
            delta(RECORDS_METRIC),
            delta(f"{BATCH_METRIC}_sum"),
            sorted(buckets),
        )

    def bound(self, quantile: float) -> float:
        """The smallest bucket bound that holds `quantile` of the batches."""
        return next(
            (b for b, count in self.buckets if count >= quantile * self.batches), float("inf")
        )

    def describe(self) -> str:
        if not self.batches:
            return "scoring: no batch during the load (no /metrics?)"
        return (
            f"scoring during the load: {self.batches:,.0f} batches of "
            f"{self.records / self.batches:,.0f} interactions on average; a batch's transaction "
            f"took {1000 * self.seconds / self.batches:,.0f} ms on average, <= "
            f"{1000 * self.bound(0.5):,.0f} ms for half of them, <= "
            f"{1000 * self.bound(0.99):,.0f} ms for 99% (histogram buckets); busy "
            f"{self.seconds:,.1f} s in all"
        )

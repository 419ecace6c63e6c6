"""Kafka plumbing used by every service: producer settings and topic creation."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiokafka.admin.client
import aiokafka.client
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.errors import (
    IncompatibleBrokerVersion,
    KafkaError,
    TopicAlreadyExistsError,
    for_code,
)
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.protocol.metadata import MetadataRequest
from aiokafka.structs import RecordMetadata

from shared.events import LOG_STARTED_TYPE, CloudEvent, LogStarted
from shared.settings import Settings
from shared.topics import CATALOG, Topic

log = logging.getLogger(__name__)


class _MetadataRequestThatCreatesNothing(MetadataRequest):  # type: ignore[misc]
    def __init__(
        self, topics: list[str] | None = None, allow_auto_topic_creation: bool | None = False
    ) -> None:
        super().__init__(topics, allow_auto_topic_creation)


# aiokafka asks the broker to create every unknown topic its clients name, and Tansu
# obliges (4 partitions, no log markers), with no broker setting to refuse. A topic
# created that way breaks the detection of a broker that lost its log, so our clients
# never ask: topics come only from `ensure_topics`.
aiokafka.client.MetadataRequest = _MetadataRequestThatCreatesNothing
aiokafka.admin.client.MetadataRequest = _MetadataRequestThatCreatesNothing


class BrokerUnavailable(RuntimeError):
    """The broker did not acknowledge in time; the caller must not report success."""


def new_producer(settings: Settings, *, linger_ms: int = 2) -> AIOKafkaProducer:
    """A producer that waits for all in-sync replicas, batching records for `linger_ms`."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.require_broker(),
        acks="all",
        enable_idempotence=settings.kafka_idempotence,
        linger_ms=linger_ms,
        max_batch_size=256 * 1024,
        request_timeout_ms=int(settings.publish_timeout_seconds * 1000),
        retry_backoff_ms=100,
    )


@asynccontextmanager
async def admin_client(settings: Settings) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.require_broker(), request_timeout_ms=10_000
    )
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


@dataclass(frozen=True)
class TopicsReport:
    """What `ensure_topics` found and did."""

    created: list[str] = field(default_factory=list)
    grown: dict[str, int] = field(default_factory=dict)  # topic -> partitions before
    too_many: dict[str, int] = field(default_factory=dict)  # topic -> partitions it has
    cannot_grow: dict[str, int] = field(default_factory=dict)  # the broker can't add any

    def operator_actions(self, configured: int) -> list[str]:
        """What nobody but an operator can do about the topics, in words."""
        return [
            f"{name} has {count} partitions, {configured} configured: a topic never shrinks;"
            f" set LEADFLOW_TOPIC_PARTITIONS={count}, or drain, delete and recreate it"
            for name, count in self.too_many.items()
        ] + [
            f"{name} has {count} partitions, {configured} configured, and this broker cannot"
            f" add partitions: drain, delete and recreate it, or set"
            f" LEADFLOW_TOPIC_PARTITIONS={count}"
            for name, count in self.cannot_grow.items()
        ]


async def ensure_topics(
    settings: Settings, topics: tuple[Topic, ...] = CATALOG, attempts: int = 5
) -> TopicsReport:
    """Make every catalog topic exist with our partition count, each partition starting
    with a log marker. Safe to call in any state and from several processes at once:
    only the process whose request created a topic writes its markers."""
    for attempt in range(1, attempts + 1):
        try:
            async with _ensuring:
                return await _ensure_topics(settings, topics)
        except KafkaError as error:
            if attempt == attempts:
                raise
            log.warning(
                "topics not ensured yet; retrying",
                extra={"error": type(error).__name__, "attempt": attempt},
            )
            await asyncio.sleep(0.2 * 2**attempt)
    raise AssertionError("unreachable")


async def create_topics(settings: Settings, topics: tuple[Topic, ...] = CATALOG) -> list[str]:
    """Create (or repair) the catalog topics; answer the names created."""
    return (await ensure_topics(settings, topics)).created


_ensuring = asyncio.Lock()


async def _ensure_topics(settings: Settings, topics: tuple[Topic, ...]) -> TopicsReport:
    wanted = settings.topic_partitions
    report = TopicsReport()
    async with admin_client(settings) as admin:
        existing = set(await admin.list_topics())
        missing = [topic.name for topic in topics if topic.name not in existing]
        if missing:
            report.created.extend(await _create(admin, settings, missing))
        present = [topic.name for topic in topics if topic.name in existing]
        described = await admin.describe_topics(present) if present else []
        for topic in described:
            count = len(topic["partitions"])
            if count < wanted:
                try:
                    await admin.create_partitions({topic["topic"]: NewPartitions(wanted)})
                except IncompatibleBrokerVersion:
                    report.cannot_grow[topic["topic"]] = count
                else:
                    report.grown[topic["topic"]] = count
            elif count > wanted:
                report.too_many[topic["topic"]] = count
    if report.created:
        await _write_log_markers(settings, dict.fromkeys(report.created))
        log.warning("topics were missing; created", extra={"topics": report.created})
    if report.grown:
        await _write_log_markers(settings, report.grown)
    for action in report.operator_actions(wanted):
        log.warning("topic needs an operator", extra={"action": action})
    return report


async def _create(admin: AIOKafkaAdminClient, settings: Settings, names: list[str]) -> list[str]:
    response = await admin.create_topics(
        [
            NewTopic(
                name,
                num_partitions=settings.topic_partitions,
                replication_factor=settings.topic_replication,
            )
            for name in names
        ]
    )
    created = []
    for name, code, *_ in response.topic_errors:
        if code == 0:
            created.append(name)
        elif code != TopicAlreadyExistsError.errno:
            raise for_code(code)(f"creating topic {name}")
    return created


async def _write_log_markers(settings: Settings, topics: Mapping[str, int | None]) -> None:
    """Start every new partition (of a topic: from the given partition on, None: all) with a
    marker naming this incarnation of the log.

    See `shared.consumer`: consumers compare the marker with the one they stored beside
    their offsets to notice a broker that lost its data.
    """
    producer = new_producer(settings)
    await producer.start()
    try:
        deliveries = []
        for topic, first_new in topics.items():
            for partition in sorted(await producer.partitions_for(topic)):
                if first_new is not None and partition < first_new:
                    continue
                marker = CloudEvent[LogStarted](
                    id=str(uuid.uuid4()),
                    source="/leadflow/topics",
                    type=LOG_STARTED_TYPE,
                    time=datetime.now(UTC),
                    subject=f"{topic}/{partition}",
                    data=LogStarted(topic=topic, partition=partition),
                )
                deliveries.append(
                    await producer.send(
                        topic,
                        marker.model_dump_json(exclude_none=True).encode(),
                        partition=partition,
                    )
                )
        await asyncio.gather(*deliveries)
    finally:
        await producer.stop()


async def broker_ready(producer: AIOKafkaProducer) -> bool:
    """Whether the broker answers a metadata request within two seconds."""
    try:
        async with asyncio.timeout(2):
            await producer.client.fetch_all_metadata()
    except Exception:
        return False
    return True


_partitioner = DefaultPartitioner()
FEW_RECORDS = 32


async def send_in_batches(
    producer: AIOKafkaProducer, records: Iterable[tuple[str, bytes | None, bytes]]
) -> list[RecordMetadata]:
    """Send (topic, key, value) records; return once all are acknowledged, with where the
    broker put them (one answer per record or per batch).

    Many records are grouped in one batch per partition (keys go where `send(key=...)`
    would put them), which costs far less than a future per record. A few records go
    through `send`, so that concurrent callers share the producer's lingering batches.
    """
    records = list(records)
    if len(records) < FEW_RECORDS:
        deliveries = [await producer.send(t, value, key=key) for t, key, value in records]
        return _in_marked_logs(await asyncio.gather(*deliveries))
    partitions: dict[str, list[int]] = {}
    grouped: dict[tuple[str, int], list[tuple[bytes | None, bytes]]] = defaultdict(list)
    for topic, key, value in records:
        if topic not in partitions:
            partitions[topic] = sorted(await producer.partitions_for(topic))
        grouped[(topic, _partitioner(key, partitions[topic], partitions[topic]))].append(
            (key, value)
        )
    deliveries = []
    for (topic, partition), items in grouped.items():
        batch = producer.create_batch()
        for key, value in items:
            if batch.append(key=key, value=value, timestamp=None) is None:
                deliveries.append(await producer.send_batch(batch, topic, partition=partition))
                batch = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)
        deliveries.append(await producer.send_batch(batch, topic, partition=partition))
    return _in_marked_logs(await asyncio.gather(*deliveries))


class UnmarkedLog(KafkaError):  # type: ignore[misc]
    """The broker put a record first in a partition, where our marker belongs: the topic was
    not made by `ensure_topics`, or (Tansu, just restarted) does not exist at all and the
    record was acknowledged into nothing. Either way it is not safely stored."""

    retriable = True


def _in_marked_logs(acknowledged: list[RecordMetadata]) -> list[RecordMetadata]:
    if any(record.offset == 0 for record in acknowledged):
        raise UnmarkedLog("a record landed at offset 0, before any log marker")
    return acknowledged

"""Kafka plumbing used by every service: producer settings and topic creation."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.partitioner import DefaultPartitioner

from shared.events import LOG_STARTED_TYPE, CloudEvent, LogStarted
from shared.settings import Settings
from shared.topics import CATALOG, Topic

log = logging.getLogger(__name__)


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


async def create_topics(settings: Settings, topics: tuple[Topic, ...] = CATALOG) -> list[str]:
    """Create every catalog topic that does not exist yet; answer the names created."""
    async with admin_client(settings) as admin:
        existing = set(await admin.list_topics())
        missing = [topic.name for topic in topics if topic.name not in existing]
        if not missing:
            return []
        try:
            await admin.create_topics(
                [
                    NewTopic(
                        name,
                        num_partitions=settings.topic_partitions,
                        replication_factor=settings.topic_replication,
                    )
                    for name in missing
                ]
            )
        except TopicAlreadyExistsError:
            log.info("topics created concurrently by another process")
            return []
    await _write_log_markers(settings, missing)
    return missing


async def _write_log_markers(settings: Settings, topics: list[str]) -> None:
    """Start every partition of new topics with a marker naming this incarnation of the log.

    See `shared.consumer`: consumers compare the marker with the one they stored beside
    their offsets to notice a broker that lost its data.
    """
    producer = new_producer(settings)
    await producer.start()
    try:
        deliveries = []
        for topic in topics:
            for partition in sorted(await producer.partitions_for(topic)):
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
) -> None:
    """Send (topic, key, value) records; return once all are acknowledged.

    Many records are grouped in one batch per partition (keys go where `send(key=...)`
    would put them), which costs far less than a future per record. A few records go
    through `send`, so that concurrent callers share the producer's lingering batches.
    """
    records = list(records)
    if len(records) < FEW_RECORDS:
        deliveries = [await producer.send(t, value, key=key) for t, key, value in records]
        await asyncio.gather(*deliveries)
        return
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
    await asyncio.gather(*deliveries)

"""Kafka plumbing used by every service: producer settings and topic creation."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

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
        if missing:
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
    return missing

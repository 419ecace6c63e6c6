"""The Kafka adapter of ingest: appends recorded interactions to `lead.interactions`.

A publish returns only once the broker acknowledged every record (acks=all); a broker
that is down or slow turns into `BrokerUnavailable` within the publish timeout.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from shared.events import InteractionRecorded
from shared.kafka import BrokerUnavailable, new_producer, send_in_batches
from shared.settings import Settings
from shared.topics import INTERACTIONS

log = logging.getLogger(__name__)


class Publisher(Protocol):
    async def publish(self, events: Sequence[InteractionRecorded]) -> None: ...

    async def is_ready(self) -> bool: ...


class KafkaPublisher:
    """Owns one producer; (re)connects lazily so ingest starts even while the broker is down."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._timeout = settings.publish_timeout_seconds
        self._producer: AIOKafkaProducer | None = None
        self._starting = asyncio.Lock()

    async def start(self) -> None:
        try:
            await self._connected()
        except BrokerUnavailable:
            log.warning("broker unreachable at start; will retry on the first publish")

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def _connected(self) -> AIOKafkaProducer:
        if self._producer is not None:
            return self._producer
        async with self._starting:
            if self._producer is None:
                producer = new_producer(self._settings)
                try:
                    async with asyncio.timeout(self._timeout):
                        await producer.start()
                except (TimeoutError, KafkaError, OSError) as error:
                    await producer.stop()
                    raise BrokerUnavailable("the broker is not reachable") from error
                self._producer = producer
        return self._producer

    async def publish(self, events: Sequence[InteractionRecorded]) -> None:
        producer = await self._connected()
        try:
            async with asyncio.timeout(self._timeout):
                await send_in_batches(
                    producer,
                    (
                        (
                            INTERACTIONS.name,
                            event.subject.encode(),
                            event.model_dump_json(exclude_none=True).encode(),
                        )
                        for event in events
                    ),
                )
        except (TimeoutError, KafkaError) as error:
            raise BrokerUnavailable("the broker did not acknowledge in time") from error

    async def is_ready(self) -> bool:
        try:
            producer = await self._connected()
            async with asyncio.timeout(2):
                await producer.client.fetch_all_metadata()
        except (BrokerUnavailable, TimeoutError, KafkaError):
            return False
        return True

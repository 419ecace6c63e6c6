"""The Kafka adapter of ingest: appends recorded interactions to `lead.interactions`.

A publish returns only once the broker acknowledged every record (acks=all); a broker
that is down or slow turns into `BrokerUnavailable` within the publish timeout. Records
go only to a topic we created (with its partitions and log markers): no client of ours
lets the broker create one, so a broker that came back empty refuses the publish until
the topics are made again, which a failed publish sets off.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from contextlib import suppress
from typing import Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from services.ingest.domain import EncodedEvent
from services.ingest.recent import RecentlyAccepted
from shared.kafka import (
    BrokerUnavailable,
    UnmarkedLog,
    ensure_topics,
    new_producer,
    send_in_batches,
)
from shared.settings import Settings
from shared.topics import INTERACTIONS

log = logging.getLogger(__name__)

REPAIR_FIRST_DELAY_SECONDS = 0.2
REPAIR_MAX_DELAY_SECONDS = 5.0


class Publisher(Protocol):
    async def publish(self, events: Sequence[EncodedEvent]) -> None: ...

    async def is_ready(self) -> bool: ...


class KafkaPublisher:
    """Owns one producer; (re)connects lazily so ingest starts even while the broker is down."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._timeout = settings.publish_timeout_seconds
        self._producer: AIOKafkaProducer | None = None
        self._starting = asyncio.Lock()
        self._repairing: asyncio.Task[None] | None = None
        self._repair_wanted = False
        self._log_reset = False
        self._recent = RecentlyAccepted()

    async def start(self) -> None:
        try:
            await self._connected()
            await self._ensure_topics()
        except (BrokerUnavailable, TimeoutError, KafkaError, OSError):
            log.warning("broker unreachable at start; will retry on the first publish")

    async def _ensure_topics(self) -> bool:
        """Whether topics were missing (the broker lost its log)."""
        async with asyncio.timeout(self._timeout):
            report = await ensure_topics(self._settings, attempts=1)
        return bool(report.created)

    def _repair_topics(self, *, log_reset: bool = False) -> None:
        """Make the topics again, and after a lost log send the recent records again, in
        the background (the failed publish answers at once; the sender's retry finds the
        topics). Asked for while it runs, it runs once more after."""
        self._repair_wanted = True
        self._log_reset = self._log_reset or log_reset
        if self._repairing is None or self._repairing.done():
            self._repairing = asyncio.create_task(self._repair())

    async def _repair(self) -> None:
        delay = REPAIR_FIRST_DELAY_SECONDS
        while self._repair_wanted:
            self._repair_wanted = False
            try:
                if await self._ensure_topics():
                    self._log_reset = True
                if self._log_reset:
                    await self._send_again()
                    self._log_reset = False
            except (TimeoutError, KafkaError, OSError) as error:
                # A broker just back may refuse for a moment: nothing kept is given up.
                log.info(
                    "topics or records not sent again yet", extra={"error": type(error).__name__}
                )
                self._repair_wanted = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, REPAIR_MAX_DELAY_SECONDS)

    async def stop(self) -> None:
        if self._repairing is not None:
            self._repairing.cancel()
            with suppress(asyncio.CancelledError):
                await self._repairing
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

    async def publish(self, events: Sequence[EncodedEvent]) -> None:
        producer = await self._connected()
        records = [(INTERACTIONS.name, event.key, event.value) for event in events]
        before = self._recent.offsets()
        try:
            async with asyncio.timeout(self._timeout):
                acknowledged = await send_in_batches(producer, records)
        except (TimeoutError, KafkaError) as error:
            # A broker that lost its log knows no topic, or answers offset 0.
            self._repair_topics(log_reset=isinstance(error, UnmarkedLog))
            raise BrokerUnavailable("the broker did not acknowledge in time") from error
        self._recent.add(records)
        where = ((a.topic, a.partition, a.offset) for a in acknowledged)
        if self._recent.log_went_back(where, before):
            self._repair_topics(log_reset=True)

    async def _send_again(self) -> None:
        records = self._recent.to_send_again()
        if records:
            log.warning("broker lost its log; publishing again", extra={"records": len(records)})
            await send_in_batches(await self._connected(), records)
        self._recent.sent_again()

    async def is_ready(self) -> bool:
        try:
            producer = await self._connected()
            async with asyncio.timeout(2):
                await producer.client.fetch_all_metadata()
        except (BrokerUnavailable, TimeoutError, KafkaError):
            return False
        return True

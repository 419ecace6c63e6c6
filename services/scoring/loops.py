"""Scoring's background loops (entrypoints): consume interactions, publish, fire timers."""

from __future__ import annotations

import asyncio
from contextlib import suppress

from aiokafka import AIOKafkaProducer

from services.scoring.handlers import CONSUMER_GROUP, ScoringService
from services.scoring.tables import consumer_offsets
from shared.consumer import StoredOffsetConsumer
from shared.outbox import OutboxRelay
from shared.settings import Settings
from shared.supervise import Loop
from shared.topics import INTERACTIONS

TIMER_POLL_SECONDS = 1.0


def interaction_consumer(settings: Settings, service: ScoringService) -> Loop:
    consumer = StoredOffsetConsumer(
        settings,
        service.engine,
        consumer_offsets,
        CONSUMER_GROUP,
        (INTERACTIONS.name,),
        service.handle_interactions,
    )
    return consumer.run


def outbox_publisher(producer: AIOKafkaProducer, relay: OutboxRelay) -> Loop:
    async def publish(stopping: asyncio.Event) -> None:
        await producer.start()
        try:
            await relay.run(stopping)
        finally:
            await producer.stop()

    return publish


def decay_timers(service: ScoringService) -> Loop:
    async def fire(stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            if await service.handle_due_timers() == 0:
                with suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), TIMER_POLL_SECONDS)

    return fire

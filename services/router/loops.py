"""Router's background loops (entrypoints): consume lifecycle, enforce SLAs, drain the queue."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from services.router.handlers import RouterService
from services.router.tables import consumer_offsets
from services.router.unit_of_work import CONSUMER_GROUP
from shared.consumer import StoredOffsetConsumer
from shared.settings import Settings
from shared.supervise import Loop, stopped_within
from shared.topics import LIFECYCLE

FOLLOW_UP_POLL_SECONDS = 1.0


def lifecycle_consumer(
    settings: Settings,
    engine: AsyncEngine,
    service: RouterService,
    on_log_reset: Callable[[], Awaitable[object]],
) -> Loop:
    """Consume lead.lifecycle; a broker that lost its log gets the router's outbox again."""
    consumer = StoredOffsetConsumer(
        settings,
        engine,
        consumer_offsets,
        CONSUMER_GROUP,
        (LIFECYCLE.name,),
        service.handle_lifecycle,
        on_log_reset,
    )
    return consumer.run


def follow_up(service: RouterService) -> Loop:
    """Every second: missed SLAs, and queued leads that a rep back from absence can take."""

    async def watch(stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            breaches = await service.handle_due_slas()
            await service.drain_queue()
            if breaches == 0:
                await stopped_within(stopping, FOLLOW_UP_POLL_SECONDS)

    return watch

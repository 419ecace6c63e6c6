"""Router's background loops (entrypoints): consume lifecycle, enforce SLAs, drain the queue."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import suppress

from services.router.handlers import CONSUMER_GROUP, RouterService
from services.router.tables import consumer_offsets
from shared.consumer import StoredOffsetConsumer
from shared.settings import Settings
from shared.supervise import Loop
from shared.topics import LIFECYCLE

FOLLOW_UP_POLL_SECONDS = 1.0


def lifecycle_consumer(
    settings: Settings, service: RouterService, on_log_reset: Callable[[], Awaitable[object]]
) -> Loop:
    """Consume lead.lifecycle; a broker that lost its log gets the router's outbox again."""
    consumer = StoredOffsetConsumer(
        settings,
        service.engine,
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
            async with service.routing_transaction() as connection:
                assigned = await service.drain_queue(connection)
            if assigned:
                service.on_committed()
            if breaches == 0:
                with suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), FOLLOW_UP_POLL_SECONDS)

    return watch

"""Scoring's background loops (entrypoints): consume interactions, fire decay timers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from services.scoring.handlers import ScoringService
from services.scoring.shadow import ShadowRuns
from services.scoring.tables import consumer_offsets
from services.scoring.unit_of_work import CONSUMER_GROUP
from shared.consumer import StoredOffsetConsumer
from shared.settings import Settings
from shared.supervise import Loop, every, stopped_within
from shared.topics import INTERACTIONS, NURTURE, SALES_ACTIONS

TIMER_POLL_SECONDS = 1.0
# How soon an instance follows a shadow run started, stopped or promoted on another one.
SHADOW_WATCH_SECONDS = 2.0


def interaction_consumer(
    settings: Settings,
    engine: AsyncEngine,
    service: ScoringService,
    on_log_reset: Callable[[], Awaitable[object]],
) -> Loop:
    """Consume interactions, returns and sales' actions (verdicts for shadow runs); a broker
    that lost its log gets scoring's outbox again."""
    consumer = StoredOffsetConsumer(
        settings,
        engine,
        consumer_offsets,
        CONSUMER_GROUP,
        (INTERACTIONS.name, NURTURE.name, SALES_ACTIONS.name),
        service.handle_interactions,
        on_log_reset,
    )
    return consumer.run


def decay_timers(service: ScoringService) -> Loop:
    async def fire(stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            if await service.handle_due_timers() == 0:
                await stopped_within(stopping, TIMER_POLL_SECONDS)

    return fire


def shadow_watch(runs: ShadowRuns) -> Loop:
    return every(SHADOW_WATCH_SECONDS, runs.watch)

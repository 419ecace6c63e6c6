"""Builds the scoring service from Settings: database, producer, relay, consumer, HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.scoring.api import router
from services.scoring.handlers import ScoringService
from services.scoring.loops import decay_timers, interaction_consumer, outbox_publisher
from services.scoring.tables import outbox
from shared.db import database_ready, new_engine
from shared.definitions import load_definitions
from shared.http import install_common
from shared.kafka import broker_ready, new_producer
from shared.outbox import OutboxRelay
from shared.settings import Settings
from shared.supervise import running


def create_app(settings: Settings, *, background: bool = True) -> FastAPI:
    """The scoring service; `background=False` serves HTTP only (no consumer, relay, timers)."""
    loaded = load_definitions(settings.definitions_path)
    engine = new_engine(settings.require_database())
    service = ScoringService(engine, loaded)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        producer = new_producer(settings, linger_ms=5)  # aiokafka clients need a running loop
        relay = OutboxRelay(engine, outbox, producer)
        service.on_committed = relay.wake
        app.state.producer = producer
        loops = {
            "interactions": interaction_consumer(settings, service),
            "outbox": outbox_publisher(producer, relay),
            "decay-timers": decay_timers(service),
        }
        try:
            async with running(loops if background else {}):
                yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title="leadflow scoring",
        version="1.0.0",
        description="Leads scored by the shared lead definitions.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.scoring = service

    async def readiness() -> dict[str, bool]:
        return {
            "database": await database_ready(engine),
            "broker": await broker_ready(app.state.producer),
        }

    install_common(app, readiness, body_limits={})
    app.include_router(router)
    return app

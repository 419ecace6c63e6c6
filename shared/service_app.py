"""The shape of a service that consumes, keeps state in PostgreSQL and publishes an outbox."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, FastAPI
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import database_ready, is_database_outage
from shared.http import answer_database_outages, install_common
from shared.kafka import broker_ready, new_producer
from shared.outbox import OutboxRelay
from shared.settings import Settings
from shared.supervise import Dependency, Loop, running


def outbox_publisher(producer: AIOKafkaProducer, relay: OutboxRelay) -> Loop:
    """Start the producer once (a stopped aiokafka producer cannot start again), then relay."""
    started = False

    async def publish(stopping: asyncio.Event) -> None:
        nonlocal started
        if not started:
            await producer.start()
            started = True
        await relay.run(stopping)

    return publish


def database_dependency(engine: AsyncEngine) -> Dependency:
    async def answers() -> bool:
        return await database_ready(engine)

    return Dependency("database", is_database_outage, answers)


def consuming_service_app(
    settings: Settings,
    *,
    title: str,
    description: str,
    engine: AsyncEngine,
    outbox: Table,
    routes: APIRouter,
    loops: Callable[[OutboxRelay], dict[str, Loop]],
) -> FastAPI:
    """A FastAPI app whose lifespan runs `loops` and the outbox relay, supervised.

    `loops` receives the relay (to wake it after each commit) and answers the service's
    own background loops. While the database is down, the loops pause and the routes
    answer 503.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        producer = new_producer(settings, linger_ms=5)  # aiokafka clients need a running loop
        relay = OutboxRelay(engine, outbox, producer)
        app.state.producer = producer
        every = {"outbox": outbox_publisher(producer, relay), **loops(relay)}
        try:
            async with running(every, pause_on=database_dependency(engine)):
                yield
        finally:
            await producer.stop()
            await engine.dispose()

    app = FastAPI(title=title, version="1.0.0", description=description, lifespan=lifespan)
    app.state.settings = settings

    async def readiness() -> dict[str, bool]:
        return {
            "database": await database_ready(engine),
            "broker": await broker_ready(app.state.producer),
        }

    install_common(app, readiness, body_limits={})
    answer_database_outages(app)
    app.include_router(routes)
    return app

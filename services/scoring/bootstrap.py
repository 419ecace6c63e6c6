"""Builds the scoring service from Settings: database, consumer, relay, timers, HTTP."""

from __future__ import annotations

from functools import partial

from fastapi import FastAPI

from services.scoring.api import router
from services.scoring.handlers import ScoringService
from services.scoring.loops import decay_timers, interaction_consumer
from services.scoring.queries import ScoringQueries
from services.scoring.tables import outbox
from services.scoring.unit_of_work import unit_of_work
from shared.db import new_engine
from shared.definitions import load_definitions
from shared.outbox import OutboxRelay
from shared.service_app import consuming_service_app
from shared.settings import Settings
from shared.supervise import Loop


def create_app(settings: Settings) -> FastAPI:
    """The scoring service: its consumer, relay and timers, and its HTTP routes."""
    engine = new_engine(settings.require_database())
    service = ScoringService(
        partial(unit_of_work, engine), load_definitions(settings.definitions_path)
    )

    def loops(relay: OutboxRelay) -> dict[str, Loop]:
        service.on_events_queued = relay.wake
        return {
            "interactions": interaction_consumer(settings, engine, service, relay.resend_retained),
            "decay-timers": decay_timers(service),
        }

    app = consuming_service_app(
        settings,
        title="leadflow scoring",
        description="Leads scored by the shared lead definitions.",
        engine=engine,
        outbox=outbox,
        routes=router,
        loops=loops,
    )
    app.state.scoring = service
    app.state.queries = ScoringQueries(engine)
    return app

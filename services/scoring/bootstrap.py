"""Builds the scoring service from Settings: database, consumer, relay, timers, HTTP."""

from __future__ import annotations

from functools import partial

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from services.scoring.api import router
from services.scoring.handlers import ScoringService
from services.scoring.loops import decay_timers, interaction_consumer, shadow_watch
from services.scoring.queries import ScoringQueries
from services.scoring.shadow import ShadowRuns
from services.scoring.shadow_api import install_shadow_errors
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

    shadow = ShadowRuns(service, settings.definitions_path)

    def loops(relay: OutboxRelay) -> dict[str, Loop]:
        service.on_events_queued = relay.wake
        return {
            "interactions": interaction_consumer(settings, engine, service, relay.resend_retained),
            "decay-timers": decay_timers(service),
            "shadow-watch": shadow_watch(shadow),
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
    # The router's dashboard reads shadow-run reports from the browser, with the admin key.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.dashboard_origin_list(),
        allow_methods=["GET"],
        allow_headers=["Authorization"],
    )
    app.state.scoring = service
    app.state.shadow = shadow
    install_shadow_errors(app)
    app.state.queries = ScoringQueries(engine)
    return app

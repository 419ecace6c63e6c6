"""Builds the router service from Settings: database, consumer, relay, follow-up, HTTP."""

from __future__ import annotations

import logging
from functools import partial

from fastapi import FastAPI

from services.router.actions import SalesDesk
from services.router.api import assets, install_domain_errors, pages, router
from services.router.assigner import Assigner
from services.router.domain.links import link_secret
from services.router.domain.notices import Audience
from services.router.handlers import RouterService
from services.router.loops import follow_up, lifecycle_consumer
from services.router.outbound.bootstrap import new_dispatcher
from services.router.outbound.subscriptions import Subscriptions
from services.router.queries import RouterQueries
from services.router.queries.reporting import ReportQueries
from services.router.tables import outbox
from services.router.unit_of_work import unit_of_work
from shared.db import new_engine
from shared.definitions import DefinitionsError, LoadedDefinitions, load_definitions
from shared.definitions.follow import DefinitionsFile, follow_definitions
from shared.definitions.loader import Located
from shared.outbox import OutboxRelay
from shared.service_app import consuming_service_app
from shared.settings import Settings
from shared.supervise import Loop

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> FastAPI:
    """The router service."""
    loaded = load_definitions(settings.definitions_path)
    if loaded.definitions.routing is None:
        raise DefinitionsError(
            loaded.source, [Located("routing", None, "the router needs a routing section")]
        )
    engine = new_engine(settings.require_database())

    units = partial(unit_of_work, engine)
    audience = Audience(email=settings.smtp_url is not None, team_chat=settings.team_chat_webhooks)
    assigner = Assigner(loaded, audience=audience)
    service = RouterService(units, assigner)
    desk = SalesDesk(units, assigner)
    dispatcher = new_dispatcher(settings, engine)

    def use(changed: LoadedDefinitions) -> None:
        """A promoted shadow run (or an operator) replaced the definitions file."""
        if changed.definitions.routing is None:
            log.warning("the new definitions have no routing section; routing goes on as it was")
            return
        assigner.loaded = app.state.definitions = changed

    def loops(relay: OutboxRelay) -> dict[str, Loop]:
        service.on_committed = desk.on_committed = relay.wake
        return {
            "lifecycle": lifecycle_consumer(settings, engine, service, relay.resend_retained),
            "follow-up": follow_up(service),
            "outbound": dispatcher.run,
            "definitions": follow_definitions(
                DefinitionsFile(settings.definitions_path), lambda: assigner.loaded.version, use
            ),
        }

    app = consuming_service_app(
        settings,
        title="leadflow router",
        description="Sales-ready leads to reps with capacity, followed up within their SLA.",
        engine=engine,
        outbox=outbox,
        routes=router,
        loops=loops,
    )
    app.state.desk = desk
    app.state.stopping = False  # set by the server when it stops: the stream ends then
    app.state.queries = RouterQueries(engine)
    app.state.report_queries = ReportQueries(engine)
    app.state.definitions = loaded
    app.state.subscriptions = Subscriptions(engine)
    app.state.dispatcher = dispatcher
    app.state.link_secret = link_secret(settings.link_secret, settings.admin_key)
    install_domain_errors(app)
    app.include_router(pages)
    app.mount("/static", assets, name="static")
    return app

"""Builds the ingest service from Settings: the real Kafka publisher unless one is given."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from pydantic import TypeAdapter

from services.ingest.api import add_event_route, router
from services.ingest.browser import install_browser_routes
from services.ingest.publisher import KafkaPublisher
from services.ingest.sources import load_sources
from services.ingest.webhooks import WebhookSenders
from shared.events import Interaction
from shared.http import install_common
from shared.settings import Settings

EVENT_BODY_LIMIT = 64 * 1024
BATCH_BODY_LIMIT = 4 * 1024 * 1024
IMPORT_BODY_LIMIT = 64 * 1024 * 1024


def _openapi_with_interaction_schema(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document plus the Interaction schema the raw-body routes refer to."""
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        document = get_openapi(title=app.title, version=app.version, routes=app.routes)
        schema = TypeAdapter(Interaction).json_schema(ref_template="#/components/schemas/{model}")
        components = document.setdefault("components", {}).setdefault("schemas", {})
        components.update(schema.pop("$defs", {}))
        components["Interaction"] = schema
        app.openapi_schema = document
    return app.openapi_schema


def create_app(settings: Settings) -> FastAPI:
    publisher = KafkaPublisher(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await publisher.start()
        try:
            yield
        finally:
            await publisher.stop()

    app = FastAPI(
        title="leadflow ingest",
        version="1.0.0",
        description="Interactions from forms, webhooks, tradeshow files and social networks.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.publisher = publisher
    # A sources file with a problem stops the start with every problem named.
    sources = load_sources(settings.sources_path) if settings.sources_path else ()
    app.state.webhook_senders = WebhookSenders(settings.webhook_secrets, sources)

    async def readiness() -> dict[str, bool]:
        return {"broker": await publisher.is_ready()}

    add_event_route(app.router)  # first: the routes taking events are matched first
    app.include_router(router)
    install_common(
        app,
        readiness,
        body_limits={
            "/v1/events/batch": BATCH_BODY_LIMIT,
            "/v1/webhooks": BATCH_BODY_LIMIT,
            "/v1/imports": IMPORT_BODY_LIMIT,
        },
        default_body_limit=EVENT_BODY_LIMIT,
    )
    install_browser_routes(app)
    app.openapi = lambda: _openapi_with_interaction_schema(app)  # type: ignore[method-assign]
    return app

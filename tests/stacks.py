"""The services wired together for tests: in-process, or served on loopback ports."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from asgi_lifespan import LifespanManager
from standardwebhooks import Webhook

from services.ingest.bootstrap import create_app as create_ingest
from services.router.bootstrap import create_app as create_router
from services.scoring.bootstrap import create_app as create_scoring
from shared.settings import Settings
from tests.conftest import TEST_ADMIN_KEY, TEST_WEBHOOK_SECRETS
from tests.serving import served

ADMIN = {"Authorization": f"Bearer {TEST_ADMIN_KEY}"}
API_KEY = {"X-API-Key": "all-channels-key"}


def standard_webhook_headers(
    body: bytes, *, sent: datetime | None = None, message_id: str | None = None
) -> dict[str, str]:
    """The headers a Standard Webhooks sender signs `body` with (the test secret)."""
    message_id = message_id or f"msg_{uuid.uuid4().hex}"
    sent = sent or datetime.now(UTC)
    signature = Webhook(TEST_WEBHOOK_SECRETS["standard"]).sign(message_id, sent, body.decode())
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(sent.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


@asynccontextmanager
async def ingest_in_process(
    settings: Settings, headers: dict[str, str] | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """Ingest in-process, and a client of it sending `headers` with every request."""
    async with LifespanManager(create_ingest(settings)) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://ingest", headers=headers
        ) as client:
            yield client


@asynccontextmanager
async def ingest_and_scoring(
    settings: Settings,
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """Ingest and scoring in-process (clients already carry the API key / admin key)."""
    async with (
        ingest_in_process(settings, API_KEY) as ingest_client,
        LifespanManager(create_scoring(settings)) as scoring_app,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=scoring_app.app),
            base_url="http://scoring",
            headers=ADMIN,
        ) as scoring_client,
    ):
        yield ingest_client, scoring_client


@dataclass
class ServedStack:
    ingest: httpx.AsyncClient
    router: httpx.AsyncClient
    router_url: str
    broker: str
    # Scoring's API, with the admin key (shadow runs).
    scoring: httpx.AsyncClient


@asynccontextmanager
async def served_stack(settings: Settings, *, routers: int = 1) -> AsyncIterator[ServedStack]:
    """All three services on loopback ports (several routers share one group and schema).

    The dashboard's pages read scoring's shadow-run report from the browser: scoring allows
    the routers' origins, and the routers give the page scoring's address."""
    async with AsyncExitStack() as stack:
        ingest_url = await stack.enter_async_context(served(create_ingest(settings)))
        router_apps = [create_router(settings) for _ in range(routers)]
        router_urls = [await stack.enter_async_context(served(app)) for app in router_apps]
        scoring_url = await stack.enter_async_context(
            served(create_scoring(settings.model_copy(update={"dashboard_origins": router_urls})))
        )
        for app in router_apps:
            app.state.settings = settings.model_copy(update={"scoring_public_url": scoring_url})
        ingest = await stack.enter_async_context(
            httpx.AsyncClient(base_url=ingest_url, headers=API_KEY)
        )
        router = await stack.enter_async_context(
            httpx.AsyncClient(base_url=router_urls[0], timeout=10)
        )
        scoring = await stack.enter_async_context(
            httpx.AsyncClient(base_url=scoring_url, headers=ADMIN, timeout=10)
        )
        yield ServedStack(ingest, router, router_urls[0], settings.require_broker(), scoring)

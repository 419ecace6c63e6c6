"""Publishable keys against the real broker: a page of the key's site writes page views and
form submits; any other origin, route or type is refused, and sends are rate-limited."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup

from services.ingest.bootstrap import create_app as create_ingest
from services.router.bootstrap import create_app as create_router
from services.scoring.bootstrap import create_app as create_scoring
from shared.embedded import stop_process
from shared.settings import PublishableKey, Settings
from shared.topics import INTERACTIONS
from tests.e2e.test_service_apis import CHECKS, MAX_EXAMPLES
from tests.kafka_reader import ReadRecord, read_until
from tests.processes import ServiceProcess, start_service

pytestmark = pytest.mark.integration

SITE = "https://www.example.com"
OTHER_SITE = "https://evil.example.net"
PK = "pk_test_site"
PAGE_VIEWS_ONLY = "pk_test_views"
TIGHT = "pk_test_tight"
API_KEY = {"X-API-Key": "all-channels-key"}
PUBLISHABLE_KEYS: dict[str, Any] = {
    PK: {"origins": [SITE], "campaigns": ["q4-webinar"]},
    PAGE_VIEWS_ONLY: {"origins": [SITE], "types": ["page_view"]},
    TIGHT: {"origins": [SITE], "rate_limit": "3/minute"},
}
EVENTS = "/v1/browser/events"


@pytest.fixture(scope="module")
def browser_settings(settings: Settings, database_url: str) -> Settings:
    keys = {key: PublishableKey.model_validate(site) for key, site in PUBLISHABLE_KEYS.items()}
    return settings.model_copy(update={"publishable_keys": keys, "database_url": database_url})


def _client(app: FastAPI, address: str = "203.0.113.7") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 50_000))
    return httpx.AsyncClient(transport=transport, base_url="http://ingest")


@pytest.fixture(scope="module")
async def ingest_app(browser_settings: Settings) -> AsyncIterator[FastAPI]:
    async with LifespanManager(create_ingest(browser_settings)) as manager:
        yield manager.app  # type: ignore[misc]


@pytest.fixture(scope="module")
async def ingest(ingest_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(ingest_app) as client:
        yield client


def page_view(anonymous_id: str | None = None, **overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "channel": "web",
        "type": "page_view",
        "contact": {"anonymous_id": anonymous_id or f"visitor-{uuid.uuid4().hex[:12]}"},
        "properties": {"url": f"{SITE}/pricing", "title": "Pricing"},
    }
    event.update(overrides)
    return event


def form_submit(email: str, anonymous_id: str, **overrides: Any) -> dict[str, Any]:
    return page_view(
        anonymous_id,
        type="form_submit",
        contact={"anonymous_id": anonymous_id, "email": email, "company": "Analytical Engines"},
        properties={"url": f"{SITE}/contact", "form": "contact-us"},
        **overrides,
    )


def from_site(origin: str = SITE) -> dict[str, str]:
    return {"Origin": origin}


async def records_until(settings: Settings, ids: set[str]) -> list[ReadRecord]:
    return await read_until(
        settings.require_broker(),
        INTERACTIONS.name,
        lambda records: ids <= {record.value["id"] for record in records},
    )


async def test_the_snippet_is_served_to_any_page_without_a_key(
    ingest: httpx.AsyncClient,
) -> None:
    response = await ingest.get("/v1/snippet.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert len(response.content) < 10_000
    assert b"data-leadflow-form" in response.content
    assert b"sendBeacon" in response.content
    assert response.headers["cross-origin-resource-policy"] == "cross-origin"


async def test_the_preflight_answers_only_the_keys_origins(ingest: httpx.AsyncClient) -> None:
    asking = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    allowed = await ingest.options(EVENTS, params={"key": PK}, headers={**from_site(), **asking})
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == SITE
    assert allowed.headers["access-control-allow-methods"] == "POST"
    assert allowed.headers["access-control-allow-headers"] == "Content-Type"
    assert int(allowed.headers["access-control-max-age"]) > 0
    assert allowed.headers["vary"] == "Origin"

    refused = [
        await ingest.options(
            EVENTS, params={"key": PK}, headers={**from_site(OTHER_SITE), **asking}
        ),
        await ingest.options(EVENTS, params={"key": PK}, headers=asking),  # no Origin
        await ingest.options(
            EVENTS, params={"key": "pk_unknown"}, headers={**from_site(), **asking}
        ),
        await ingest.options(EVENTS, headers={**from_site(), **asking}),  # no key
        await ingest.options(
            EVENTS,
            params={"key": PK},
            headers={**from_site(), **asking, "Access-Control-Request-Headers": "x-api-key"},
        ),
        await ingest.options(
            EVENTS,
            params={"key": PK},
            headers={**from_site(), **asking, "Access-Control-Request-Method": "DELETE"},
        ),
    ]
    assert [response.status_code for response in refused] == [403, 403, 401, 401, 403, 403]
    for response in refused:
        assert "access-control-allow-origin" not in response.headers
        assert "access-control-allow-methods" not in response.headers
        assert response.headers["content-type"] == "application/problem+json"


async def test_server_to_server_routes_answer_no_cors(ingest: httpx.AsyncClient) -> None:
    for response in (
        await ingest.options(
            "/v1/events", headers={**from_site(), "Access-Control-Request-Method": "POST"}
        ),
        await ingest.post("/v1/events", json=page_view(), headers={**API_KEY, **from_site()}),
    ):
        assert "access-control-allow-origin" not in response.headers
    assert response.status_code == 202


async def test_a_page_view_and_a_form_submit_from_the_site_are_recorded(
    ingest: httpx.AsyncClient, browser_settings: Settings
) -> None:
    visitor = f"visitor-{uuid.uuid4().hex[:12]}"
    view = page_view(visitor)
    viewed = await ingest.post(EVENTS, params={"key": PK}, json=view, headers=from_site())
    assert viewed.status_code == 202, viewed.text
    assert viewed.json() == {"id": f"browser:{view['id']}", "status": "accepted"}
    assert viewed.headers["access-control-allow-origin"] == SITE
    # sendBeacon sends a string body, as text/plain
    submit = form_submit("Ada@Example.com", visitor, campaign="q4-webinar")
    submitted = await ingest.post(
        EVENTS,
        params={"key": PK},
        content=httpx.Request("POST", "/", json=submit).content,
        headers={**from_site(), "Content-Type": "text/plain;charset=UTF-8"},
    )
    assert submitted.status_code == 202, submitted.text

    ids = {f"browser:{view['id']}", f"browser:{submit['id']}"}
    by_id = {
        r.value["id"]: r for r in await records_until(browser_settings, ids) if r.value["id"] in ids
    }
    recorded_view, recorded_submit = (
        by_id[f"browser:{view['id']}"],
        by_id[f"browser:{submit['id']}"],
    )
    assert recorded_view.key == visitor
    assert recorded_view.value["type"] == "leadflow.interaction.web.page_view"
    assert recorded_view.value["source"] == "/ingest/browser/events"
    assert recorded_submit.key == "ada@example.com"
    assert recorded_submit.value["data"]["contact"]["anonymous_id"] == visitor
    assert recorded_submit.value["data"]["campaign"] == "q4-webinar"


async def test_a_page_of_another_origin_writes_nothing(
    ingest: httpx.AsyncClient, browser_settings: Settings
) -> None:
    visitor = f"visitor-{uuid.uuid4().hex[:12]}"
    refused = [
        await ingest.post(
            EVENTS, params={"key": PK}, json=page_view(visitor), headers=from_site(OTHER_SITE)
        ),
        await ingest.post(EVENTS, params={"key": PK}, json=page_view(visitor)),  # no Origin
        await ingest.post(
            EVENTS, params={"key": PK}, json=page_view(visitor), headers=from_site("null")
        ),
    ]
    assert [response.status_code for response in refused] == [403, 403, 403]
    assert all("access-control-allow-origin" not in response.headers for response in refused)
    # The same visitor's next send lands on the same partition, after anything refused.
    marker = page_view(visitor)
    assert (await ingest.post("/v1/events", json=marker, headers=API_KEY)).status_code == 202
    records = await records_until(browser_settings, {marker["id"]})
    assert [r.value["id"] for r in records if r.key == visitor] == [marker["id"]]


@pytest.mark.parametrize(
    ("key", "overrides", "status", "field"),
    [
        (PK, {"type": "demo_request"}, 403, "type"),
        (PK, {"type": "content_download", "properties": {"asset": "a.pdf"}}, 403, "type"),
        (PK, {"channel": "email", "type": "open"}, 403, "type"),
        (PAGE_VIEWS_ONLY, {"type": "form_submit"}, 403, "type"),
        (PK, {"campaign": "demo-request"}, 403, "campaign"),
        (PK, {"contact": {"anonymous_id": "visitor-1", "email": "a@example.com"}}, 422, "contact"),
        (PK, {"contact": {"email": "a@example.com"}}, 422, "contact.anonymous_id"),
        (PK, {"time": "2026-01-01T00:00:00Z"}, 422, "time"),
        (PK, {"id": "webhook:abc:0"}, 422, "id"),
        (PK, {"type": "page_view", "properties": {}}, 422, "properties"),
    ],
)
async def test_a_publishable_key_writes_only_its_web_types(
    ingest: httpx.AsyncClient, key: str, overrides: dict[str, Any], status: int, field: str
) -> None:
    response = await ingest.post(
        EVENTS, params={"key": key}, json=page_view(**overrides), headers=from_site()
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["access-control-allow-origin"] == SITE  # the page may read why
    assert [error["field"] for error in response.json()["errors"]] == [field]


async def test_bodies_that_are_not_an_interaction(ingest: httpx.AsyncClient) -> None:
    async def send(content: bytes, content_type: str) -> httpx.Response:
        headers = {**from_site(), "Content-Type": content_type}
        return await ingest.post(EVENTS, params={"key": PK}, content=content, headers=headers)

    answers = [
        await send(b"{", "text/plain"),
        await send(b"a=1", "application/x-www-form-urlencoded"),
        await send(b"[]", "application/json"),
        await send(b"x" * 70_000, "text/plain"),
    ]
    assert [answer.status_code for answer in answers] == [400, 415, 422, 413]
    assert all(a.headers["content-type"] == "application/problem+json" for a in answers)


async def test_sends_are_limited_per_key_and_address_with_retry_after(
    ingest_app: FastAPI,
) -> None:
    async with (
        _client(ingest_app, "198.51.100.1") as first,
        _client(ingest_app, "198.51.100.2") as second,
    ):
        statuses = [
            (
                await first.post(
                    EVENTS, params={"key": TIGHT}, json=page_view(), headers=from_site()
                )
            ).status_code
            for _ in range(3)
        ]
        assert statuses == [202, 202, 202]
        limited = await first.post(
            EVENTS, params={"key": TIGHT}, json=page_view(), headers=from_site()
        )
        assert limited.status_code == 429
        assert limited.headers["content-type"] == "application/problem+json"
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.headers["access-control-allow-origin"] == SITE
        assert "Retry-After" in limited.headers["access-control-expose-headers"]
        # another address, and the same address with another key, are not held back
        other_address = await second.post(
            EVENTS, params={"key": TIGHT}, json=page_view(), headers=from_site()
        )
        other_key = await first.post(
            EVENTS, params={"key": PK}, json=page_view(), headers=from_site()
        )
        assert (other_address.status_code, other_key.status_code) == (202, 202)


def _operations(document: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if path.startswith("/v1/") and path not in (EVENTS, "/v1/snippet.js")
    ]


def _concrete(path: str) -> str:
    return (
        path.replace("{provider}", "standard")
        .replace("{lead_id}", str(uuid.uuid4()))
        .replace("{rep_id}", str(uuid.uuid4()))
    )


async def _same_as_no_key(client: httpx.AsyncClient) -> list[str]:
    """Every /v1 route answers a publishable key as it answers no credentials at all."""
    differences = []
    document = (await client.get("/openapi.json")).json()
    for method, template in _operations(document):
        path = _concrete(template)
        anonymous = await client.request(method, path, params={"campaign": "q4-webinar"})
        for presented in (
            {"headers": {"X-API-Key": PK}},
            {"headers": {"Authorization": f"Bearer {PK}"}},
            {"params": {"key": PK, "campaign": "q4-webinar"}},
        ):
            params = {"campaign": "q4-webinar", **presented.get("params", {})}
            answer = await client.request(
                method, path, params=params, headers=presented.get("headers")
            )
            if answer.status_code != anonymous.status_code:
                differences.append(f"{method} {path} {presented}: {answer.status_code}")
    return differences


async def test_a_publishable_key_is_refused_on_every_other_route_and_reads_nothing(
    ingest: httpx.AsyncClient, browser_settings: Settings
) -> None:
    for header in ({"X-API-Key": PK}, {"Authorization": f"Bearer {PK}"}):
        sent = await ingest.post("/v1/events", json=page_view(), headers=header, params={"key": PK})
        assert sent.status_code == 401
    assert await _same_as_no_key(ingest) == []
    for create_app in (create_scoring, create_router):
        app = create_app(browser_settings)  # its routes without its lifespan: no consumer
        try:
            async with _client(app) as client:
                assert await _same_as_no_key(client) == []
        finally:
            await app.state.queries.engine.dispose()


@pytest.fixture(scope="module")
def ingest_process(
    browser_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    log_path = tmp_path_factory.mktemp("ingest") / "ingest.log"
    keys = json.dumps(
        {key: site.model_dump() for key, site in browser_settings.publishable_keys.items()}
    )
    service = start_service("ingest", browser_settings, log_path, LEADFLOW_PUBLISHABLE_KEYS=keys)
    try:
        yield service
    finally:
        stop_process(service.process)


def holds_with_key(operation: Any, mode: GenerationMode, key: str) -> None:
    """Every request generated for `operation`, sent with `key` from the site, is answered
    as its document declares (the key and origin are kept; the rest is generated)."""

    @given(case=operation.as_strategy(generation_mode=mode, query={"key": key}))
    @hypothesis_settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def holds(case: Any) -> None:
        case.call_and_validate(headers=from_site(), checks=CHECKS)

    holds()


@pytest.mark.parametrize("key", [PK, TIGHT])
def test_the_browser_routes_hold_under_fuzzing_with_a_key_of_the_site(
    ingest_process: ServiceProcess, key: str
) -> None:
    """Past the key and origin checks: every answer is one the document declares."""
    schema: Any = schemathesis.openapi.from_url(f"{ingest_process.url}/openapi.json")
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path not in (EVENTS, "/v1/snippet.js"):
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                holds_with_key(operation, mode, key)
            except Unsatisfiable:
                assert mode == GenerationMode.NEGATIVE
            except (Exception, FailureGroup) as error:
                failures.append(f"{operation.label} ({mode}): {error}")
    assert not failures, "\n\n".join(failures)

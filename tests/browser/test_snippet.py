"""The snippet in Debian's chromium: a site's page on one loopback port, ingest on another.

Page views and a form submit reach `lead.interactions`, the visitor's anonymous views join
the lead they become, a page of an origin the key does not name is blocked by the browser
and writes nothing, and nothing the snippet does breaks a page (ingest down, no fetch).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse
from playwright.async_api import Browser, BrowserContext, Page

from services.ingest.bootstrap import create_app as create_ingest
from services.ingest.browser import snippet_source
from services.scoring.bootstrap import create_app as create_scoring
from shared.embedded import free_port
from shared.settings import PublishableKey, Settings
from shared.topics import INTERACTIONS
from tests.browser.chromium import needs_chromium
from tests.kafka_reader import ReadRecord, read_until
from tests.serving import served
from tests.stacks import ADMIN, API_KEY

pytestmark = needs_chromium

KEY = "pk_test_browser"
AID = "leadflow_aid"

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>{before}
<script src="{snippet}" data-key="{key}"{endpoint} async></script></head>
<body><h1>{title}</h1>
<form data-leadflow-form="contact-us" action="/thanks" method="post">
  <input type="email" name="email" placeholder="Email">
  <input name="first_name" placeholder="First name">
  <input name="Company Name" placeholder="Company">
  <input name="country" placeholder="Country">
  <input type="password" name="password" placeholder="Password">
  <textarea name="message" data-leadflow-field="message"></textarea>
  <button type="submit">Send</button>
</form></body></html>"""


@dataclass
class Site:
    """A site's pages; they embed the snippet of `ingest` (set once ingest is up)."""

    ingest: str = ""
    url: str = ""

    def app(self) -> FastAPI:
        app = FastAPI(openapi_url=None)

        def page(title: str, before: str = "", snippet: str = "", endpoint: str = "") -> str:
            return PAGE.format(
                title=title,
                before=before,
                snippet=snippet or f"{self.ingest}/v1/snippet.js",
                key=KEY,
                endpoint=f' data-endpoint="{endpoint}"' if endpoint else "",
            )

        @app.get("/", response_class=HTMLResponse)
        async def home() -> str:
            return page("Home")

        @app.get("/pricing", response_class=HTMLResponse)
        async def pricing() -> str:
            return page("Pricing")

        @app.get("/no-fetch", response_class=HTMLResponse)
        async def no_fetch() -> str:
            return page("No fetch", before="<script>window.fetch = undefined;</script>")

        @app.get("/ingest-down", response_class=HTMLResponse)
        async def ingest_down() -> str:
            # The snippet from the site itself, sending to a port where nothing listens.
            dead = f"http://127.0.0.1:{free_port()}"
            return page("Ingest down", snippet="/snippet.js", endpoint=dead)

        @app.get("/snippet.js")
        async def snippet() -> Response:
            return Response(snippet_source(), media_type="text/javascript")

        @app.post("/thanks", response_class=HTMLResponse)
        async def thanks(request: Request) -> str:
            await request.body()
            return "<!doctype html><title>Thanks</title><h1>Thank you</h1>"

        return app


@dataclass
class Stack:
    site: str
    other_site: str
    ingest: httpx.AsyncClient
    scoring: httpx.AsyncClient
    broker: str
    reached_ingest: list[tuple[str, str, str | None]] = field(default_factory=list)


@pytest.fixture(scope="module")
async def stack(settings: Settings, database_url: str) -> AsyncIterator[Stack]:
    """The site (allowed), another site (not allowed), ingest and scoring, all on loopback."""
    site, other = Site(), Site()
    async with AsyncExitStack() as running:
        site.url = await running.enter_async_context(served(site.app()))
        other.url = await running.enter_async_context(served(other.app()))
        configured = settings.model_copy(
            update={
                "database_url": database_url,
                "publishable_keys": {KEY: PublishableKey(origins=[site.url])},
            }
        )
        reached: list[tuple[str, str, str | None]] = []
        ingest_app = create_ingest(configured)

        @ingest_app.middleware("http")
        async def record(request: Request, call_next: Callable[[Request], Any]) -> Any:
            reached.append((request.method, request.url.path, request.headers.get("origin")))
            return await call_next(request)

        site.ingest = other.ingest = await running.enter_async_context(served(ingest_app))
        scoring_url = await running.enter_async_context(served(create_scoring(configured)))
        ingest = await running.enter_async_context(
            httpx.AsyncClient(base_url=site.ingest, headers=API_KEY)
        )
        scoring = await running.enter_async_context(
            httpx.AsyncClient(base_url=scoring_url, headers=ADMIN, timeout=10)
        )
        yield Stack(site.url, other.url, ingest, scoring, configured.require_broker(), reached)


@dataclass
class Visit:
    context: BrowserContext
    page: Page
    errors: list[str]
    console: list[str]


@pytest.fixture
async def visit(browser: Browser) -> AsyncIterator[Visit]:
    """A fresh visitor: own cookies and storage; the page's uncaught errors are kept."""
    context = await browser.new_context()
    page = await context.new_page()
    errors: list[str] = []
    console: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: console.append(message.text))
    try:
        yield Visit(context, page, errors, console)
    finally:
        await context.close()


async def open_page(visit: Visit, url: str) -> str:
    """Open `url`, wait for the snippet; answer the visitor's anonymous id."""
    await visit.page.goto(url)
    await visit.page.wait_for_function("window.leadflow && window.leadflow.loaded")
    anonymous_id: str = await visit.page.evaluate("leadflow.anonymousId()")
    return anonymous_id


async def submit_the_form(page: Page, email: str) -> None:
    await page.fill("input[name=email]", email)
    await page.fill("input[name=first_name]", "Ada")
    await page.fill("input[name='Company Name']", "Analytical Engines")
    await page.fill("input[name=country]", "gb")
    await page.fill("input[name=password]", "hunter2")
    await page.fill("textarea[name=message]", "Call me")
    await page.click("button[type=submit]")
    await page.wait_for_url("**/thanks")
    assert await page.inner_text("h1") == "Thank you"  # the form went on to the site


def of_visitor(records: list[ReadRecord], anonymous_id: str) -> list[ReadRecord]:
    """The visitor's interactions (the topic also holds markers, which have no contact)."""
    return [
        r
        for r in records
        if r.value.get("data", {}).get("contact", {}).get("anonymous_id") == anonymous_id
    ]


async def interactions_of(stack: Stack, anonymous_id: str, count: int) -> list[ReadRecord]:
    records = await read_until(
        stack.broker,
        INTERACTIONS.name,
        lambda records: len(of_visitor(records, anonymous_id)) >= count,
        within_seconds=20,
    )
    return of_visitor(records, anonymous_id)


async def scored_lead(stack: Stack, email: str, interactions: int) -> dict[str, Any]:
    """The lead of `email` once scoring holds `interactions` of theirs (waits for it)."""
    lead: dict[str, Any] = {}
    for _ in range(300):
        found = (await stack.scoring.get("/v1/leads", params={"email": email})).json()["items"]
        if found:
            lead = (await stack.scoring.get(f"/v1/leads/{found[0]['id']}")).json()
            if lead["interaction_count"] >= interactions:
                return lead
        await asyncio.sleep(0.1)
    raise AssertionError(f"scoring never held {interactions} interactions: {lead}")


async def test_page_views_and_a_form_submit_reach_the_topic_and_join_the_lead(
    stack: Stack, visit: Visit
) -> None:
    anonymous_id = await open_page(visit, f"{stack.site}/")
    await open_page(visit, f"{stack.site}/pricing")
    cookies = {c["name"]: c for c in await visit.context.cookies()}
    assert cookies[AID]["value"] == anonymous_id  # first-party: the site's own cookie
    assert cookies[AID]["domain"] == "127.0.0.1"
    assert await visit.page.evaluate(f"localStorage.getItem('{AID}')") == anonymous_id
    email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    await submit_the_form(visit.page, email)

    records = await interactions_of(stack, anonymous_id, 3)
    kinds = sorted(record.value["type"].rsplit(".", 1)[1] for record in records)
    assert kinds == ["form_submit", "page_view", "page_view"]
    urls = {r.value["data"]["properties"]["url"] for r in records if r.key == anonymous_id}
    assert urls == {f"{stack.site}/", f"{stack.site}/pricing"}
    [submitted] = [record for record in records if record.key == email]
    assert submitted.value["source"] == "/ingest/browser/events"
    assert submitted.value["data"]["contact"] == {
        "email": email,
        "anonymous_id": anonymous_id,
        "first_name": "Ada",
        "company": "Analytical Engines",
        "country": "GB",
    }
    properties = submitted.value["data"]["properties"]
    assert (properties["form"], properties["message"]) == ("contact-us", "Call me")
    assert "hunter2" not in json.dumps(submitted.value)  # a password field is never read
    assert visit.errors == []

    lead = await scored_lead(stack, email, 3)
    assert lead["interaction_count"] == 3  # both anonymous views joined the lead
    rules = {rule["rule"] for rule in lead["breakdown"]["behaviour"]}
    assert {"page-view", "form-submit"} <= rules


async def test_a_page_on_an_origin_not_allowed_is_blocked_and_writes_nothing(
    stack: Stack, visit: Visit
) -> None:
    page = visit.page
    async with page.expect_event(
        "requestfailed", lambda request: "/v1/browser/events" in request.url, timeout=10_000
    ):
        anonymous_id = await open_page(visit, f"{stack.other_site}/")
    assert any("blocked by CORS policy" in message for message in visit.console)
    email = f"blocked-{uuid.uuid4().hex[:8]}@example.com"
    async with visit.context.expect_event(
        "requestfailed", lambda request: "/v1/browser/events" in request.url, timeout=10_000
    ):
        await submit_the_form(page, email)
    assert visit.errors == []

    from_other_site = [seen for seen in stack.reached_ingest if seen[2] == stack.other_site]
    assert from_other_site, "the browser asked ingest first (a preflight)"
    assert {method for method, _, _ in from_other_site} == {"OPTIONS"}
    # Anything of theirs would be on the partitions of their keys, before these markers.
    markers = [
        {"channel": "web", "type": "page_view", "contact": contact, "properties": {"url": "x"}}
        for contact in ({"anonymous_id": anonymous_id}, {"email": email})
    ]
    ids = set()
    for marker in markers:
        sent = await stack.ingest.post("/v1/events", json=marker)
        assert sent.status_code == 202
        ids.add(sent.json()["id"])
    records = await read_until(
        stack.broker,
        INTERACTIONS.name,
        lambda records: ids <= {record.value["id"] for record in records},
    )
    theirs = [record for record in records if record.key in (anonymous_id, email)]
    assert {record.value["id"] for record in theirs} == ids


async def test_without_fetch_the_snippet_sends_beacons_and_identify_joins_the_lead(
    stack: Stack, visit: Visit
) -> None:
    anonymous_id = await open_page(visit, f"{stack.site}/no-fetch")
    email = f"grace-{uuid.uuid4().hex[:8]}@example.com"
    await visit.page.evaluate(
        "([email]) => leadflow.identify(email, {company: 'Navy', job_title: 'Admiral'})",
        [email],
    )
    records = await interactions_of(stack, anonymous_id, 2)
    [identified] = [record for record in records if record.key == email]
    assert identified.value["data"]["properties"]["form"] == "identify"
    assert identified.value["data"]["contact"]["job_title"] == "Admiral"
    assert visit.errors == []
    assert (await scored_lead(stack, email, 2))["interaction_count"] == 2


async def test_the_page_works_when_ingest_is_down(stack: Stack, visit: Visit) -> None:
    await open_page(visit, f"{stack.site}/ingest-down")
    await visit.page.evaluate(
        "leadflow.identify('x@example.com', {company: 'X'}); leadflow.track('page_view')"
    )
    await submit_the_form(visit.page, "down@example.com")
    assert visit.errors == []

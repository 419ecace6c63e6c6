"""Named scores end to end, on the product-lines definitions: interactions through ingest and
scoring (real broker and PostgreSQL) hand a lead off by fit and one product score; the stage
and threshold events carry every named score; the lead API shows each with its breakdown;
the router keeps them from the hand-off."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import httpx
import pytest

from services.router.actions import SalesDesk
from services.router.assigner import Assigner
from services.router.handlers import RouterService
from services.router.queries import RouterQueries
from services.router.unit_of_work import unit_of_work
from shared.db import new_engine
from shared.definitions import load_definitions
from shared.settings import Settings
from shared.topics import LIFECYCLE
from tests.integration.test_scoring import lead_by_email, lifecycle_of
from tests.kafka_reader import read_until
from tests.records import batch_of_one
from tests.stacks import ingest_and_scoring

pytestmark = pytest.mark.integration

PRODUCT_LINES = Path(__file__).resolve().parents[2] / "examples/definitions/product-lines.yaml"


@pytest.fixture(scope="module")
async def stack(
    settings: Settings, database_url: str
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    configured = settings.model_copy(
        update={"database_url": database_url, "definitions_path": PRODUCT_LINES}
    )
    async with ingest_and_scoring(configured) as clients:
        yield clients


async def test_a_lead_deep_into_one_product_is_handed_off_with_every_score(
    stack: tuple[httpx.AsyncClient, httpx.AsyncClient], settings: Settings, database_url: str
) -> None:
    ingest, scoring = stack
    start = datetime.now(UTC) - timedelta(minutes=10)
    email = "vp@contoso.example"
    contact: dict[str, object] = {
        "email": email,
        "company": "Contoso",
        "job_title": "VP Finance",
        "company_size": 800,
        "country": "DE",
    }
    pricing = {"url": "https://acme.example/analytics/pricing"}
    guide = {"asset": "dashboards.pdf"}
    events = [
        {"channel": "web", "type": "page_view", "properties": pricing, "contact": contact},
        {"channel": "web", "type": "page_view", "properties": pricing},
        {
            "channel": "web",
            "type": "content_download",
            "campaign": "analytics-webinar",
            "properties": guide,
        },
        {
            "channel": "web",
            "type": "content_download",
            "campaign": "analytics-webinar",
            "properties": guide,
        },
    ]
    for minute, event in enumerate(events):
        sent = {"contact": {"email": email}} | event
        sent["time"] = (start + timedelta(minutes=minute)).isoformat()
        answer = await ingest.post("/v1/events", json=sent)
        assert answer.status_code == 202, answer.text

    lead = await lead_by_email(scoring, email, stage="sql")
    assert lead["fit"] == 30  # executive 20, mid-market-and-up 10: the hand-off asks 20
    analytics, crm = lead["named_scores"]
    assert (analytics["key"], crm["key"]) == ("analytics", "crm")
    assert 69 < analytics["score"] <= 70  # 2 x (5 + 15) + 2 x 15, a few minutes decayed
    assert analytics["thresholds_met"] == [30.0, 60.0]
    assert {rule["rule"]: rule["points"] for rule in analytics["breakdown"]["behaviour"]} == {
        "analytics-pages": 10,
        "analytics-pricing": 30,
        "analytics-content": 30,
    }
    assert crm["score"] == 0
    assert crm["breakdown"] == {"behaviour": [], "fit": []}
    assert lead["scores"] == {"analytics": analytics["score"], "crm": 0}
    listed = (await scoring.get("/v1/leads", params={"email": email})).json()
    assert set(listed["items"][0]["scores"]) == {"analytics", "crm"}

    records = await read_until(
        settings.require_broker(),
        LIFECYCLE.name,
        lambda rs: any(c.get("is_hand_off") for c in lifecycle_of(rs, lead["id"])),
    )
    changes = lifecycle_of(records, lead["id"])
    hand_off = next(c for c in changes if c.get("is_hand_off"))
    assert (hand_off["to_stage"], hand_off["reason"]) == ("sql", "criteria")
    assert set(hand_off["scores"]) == {"analytics", "crm"}
    assert hand_off["scores"]["analytics"] >= 60
    assert all(set(c["scores"]) == {"analytics", "crm"} for c in changes)
    crossings = sorted(
        (c["score_key"], c["threshold"], c["direction"])
        for c in changes
        if c["kind"] == "threshold_crossed"
    )
    assert crossings == [
        ("analytics", 30.0, "up"),
        ("analytics", 60.0, "up"),
        ("score", 40.0, "up"),
    ]

    # The router keeps the scores the lead was handed off with, and shows them in the queue.
    engine = new_engine(database_url)
    try:
        units = partial(unit_of_work, engine)
        assigner = Assigner(load_definitions(PRODUCT_LINES), lambda: datetime.now(UTC))
        rep_id, _ = await SalesDesk(units, assigner).create_rep(
            {"name": "Dora", "team": "dach", "capacity": 5}
        )
        value = next(r for r in records if r.value["data"] == hand_off).value
        encoded = httpx.Response(200, json=value).content
        await RouterService(units, assigner).handle_lifecycle(
            batch_of_one(LIFECYCLE.name, encoded, 0)
        )
        queue = await RouterQueries(engine).queue_of(rep_id)
    finally:
        await engine.dispose()
    assert [(queued.id, queued.scores) for queued in queue] == [(lead["id"], hand_off["scores"])]

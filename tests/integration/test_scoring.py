"""Scoring against the real broker and PostgreSQL: interactions in, leads and lifecycle out."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from shared.settings import Settings
from shared.topics import INTERACTIONS, INTERACTIONS_DLQ, LIFECYCLE
from tests.kafka_reader import ReadRecord, read_until
from tests.stacks import ingest_and_scoring

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def stack(
    settings: Settings, database_url: str
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    async with ingest_and_scoring(
        settings.model_copy(update={"database_url": database_url})
    ) as clients:
        yield clients


async def lead_by_email(scoring: httpx.AsyncClient, email: str, **expect: Any) -> dict[str, Any]:
    """Poll until the lead exists and shows what is expected (scoring is asynchronous)."""
    for _ in range(100):
        page = (await scoring.get("/v1/leads", params={"email": email})).json()
        if page["items"]:
            detail: dict[str, Any] = (
                await scoring.get(f"/v1/leads/{page['items'][0]['id']}")
            ).json()
            if all(detail.get(key) == value for key, value in expect.items()):
                return detail
        await asyncio.sleep(0.1)
    raise AssertionError(f"no lead {email} with {expect}")


def lifecycle_of(records: list[ReadRecord], lead_id: str) -> list[dict[str, Any]]:
    return [r.value["data"] for r in records if r.value.get("subject") == lead_id]


async def test_interactions_become_a_scored_lead_with_stage_and_threshold_events(
    stack: tuple[httpx.AsyncClient, httpx.AsyncClient], settings: Settings
) -> None:
    ingest, scoring = stack
    contact = {
        "email": "ada@example.com",
        "company": "Analytical Engines",
        "job_title": "VP Engineering",
        "company_size": 800,
        "country": "DE",
    }
    events = [
        {
            "channel": "web",
            "type": "form_submit",
            "time": "2026-11-20T10:00:00Z",
            "contact": contact,
        },
        {
            "channel": "web",
            "type": "page_view",
            "time": "2026-11-20T10:05:00Z",
            "contact": {"email": "ada@example.com"},
            "properties": {"url": "https://acme.test/pricing"},
        },
        {
            "channel": "tradeshow",
            "type": "meeting",
            "time": "2026-11-21T09:00:00Z",
            "contact": {"email": "ADA@example.com"},
            "campaign": "websummit-2026",
        },
    ]
    for event in events:
        assert (await ingest.post("/v1/events", json=event)).status_code == 202

    lead = await lead_by_email(scoring, "ada@example.com", stage="sql")
    assert lead["grade"] == "A"
    assert lead["fit"] == 40
    assert lead["interaction_count"] == 3
    behaviour = {item["rule"]: item for item in lead["breakdown"]["behaviour"]}
    assert behaviour["booth-meeting"]["points"] == 48  # 40 x the campaign's 1.2
    assert behaviour["booth-meeting"]["decayed_points"] < 48
    assert {item["rule"] for item in lead["breakdown"]["fit"]} == {
        "executive",
        "mid-market-and-up",
        "core-markets",
    }
    assert lead["definitions_version"]

    records = await read_until(
        settings.require_broker(),
        LIFECYCLE.name,
        lambda rs: len(lifecycle_of(rs, lead["id"])) >= 4,
    )
    changes = lifecycle_of(records, lead["id"])
    stages = [
        (c["from_stage"], c["to_stage"], c["is_hand_off"])
        for c in changes
        if c["kind"] == "stage_changed"
    ]
    assert stages == [(None, "inquiry", False), ("inquiry", "mql", False), ("mql", "sql", True)]
    crossings = [
        (c["threshold"], c["direction"]) for c in changes if c["kind"] == "threshold_crossed"
    ]
    assert sorted(crossings) == [(50.0, "up"), (100.0, "up")]
    hand_off = next(c for c in changes if c.get("is_hand_off"))
    assert hand_off["profile"]["country"] == "DE"
    assert all(r.key == lead["id"] for r in records if r.value.get("subject") == lead["id"])
    envelope = next(r.value for r in records if r.value.get("subject") == lead["id"])
    assert envelope["definitions_version"] == lead["definitions_version"]


async def test_an_anonymous_visitor_who_identifies_keeps_their_history(
    stack: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    ingest, scoring = stack
    for n in range(3):
        visit = {
            "channel": "web",
            "type": "page_view",
            "contact": {"anonymous_id": "cookie-77"},
            "time": f"2026-11-20T1{n}:00:00Z",
            "properties": {"url": f"https://acme.test/p{n}"},
        }
        assert (await ingest.post("/v1/events", json=visit)).status_code == 202
    identify = {
        "channel": "web",
        "type": "form_submit",
        "time": "2026-11-21T10:00:00Z",
        "contact": {"anonymous_id": "cookie-77", "email": "grace@example.com", "company": "Navy"},
    }
    assert (await ingest.post("/v1/events", json=identify)).status_code == 202
    lead = await lead_by_email(scoring, "grace@example.com", interaction_count=4)
    assert {item["rule"]: item["points"] for item in lead["breakdown"]["behaviour"]} == {
        "page-view": 3,
        "form-submit": 15,
    }


async def test_a_redelivered_interaction_counts_once(
    stack: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    ingest, scoring = stack
    event = {
        "id": "dup-1",
        "channel": "email",
        "type": "reply",
        "time": "2026-11-20T10:00:00Z",
        "contact": {"email": "linus@example.com"},
    }
    for _ in range(3):
        assert (await ingest.post("/v1/events", json=event)).status_code == 202
    marker = {
        "channel": "email",
        "type": "open",
        "time": "2026-11-20T11:00:00Z",
        "contact": {"email": "linus@example.com"},
    }
    assert (await ingest.post("/v1/events", json=marker)).status_code == 202
    lead = await lead_by_email(scoring, "linus@example.com", interaction_count=2)
    assert lead["breakdown"]["behaviour"][0] == {
        "rule": "email-reply",
        "points": 15,
        "decayed_points": pytest.approx(15 * 0.5 ** (lead_age_days(lead) / 30), rel=0.05),
    }


def lead_age_days(lead: dict[str, Any]) -> float:
    from datetime import datetime

    as_of = datetime.fromisoformat(lead["as_of"])
    return (as_of - datetime.fromisoformat("2026-11-20T10:00:00+00:00")).total_seconds() / 86400


async def test_a_poison_message_goes_to_the_dlq_and_the_consumer_goes_on(
    stack: tuple[httpx.AsyncClient, httpx.AsyncClient], settings: Settings
) -> None:
    ingest, scoring = stack
    producer = AIOKafkaProducer(bootstrap_servers=settings.require_broker())
    await producer.start()
    try:
        await producer.send_and_wait(INTERACTIONS.name, b"{not json", key=b"someone")
        await producer.send_and_wait(
            INTERACTIONS.name,
            json.dumps({"specversion": "1.0", "id": "x"}).encode(),
            key=b"someone",
        )
    finally:
        await producer.stop()
    after = {
        "channel": "social",
        "type": "message",
        "contact": {"email": "after@example.com"},
        "properties": {"network": "linkedin"},
        "time": "2026-11-20T10:00:00Z",
    }
    assert (await ingest.post("/v1/events", json=after)).status_code == 202
    await lead_by_email(scoring, "after@example.com")

    dead = await read_until(
        settings.require_broker(), INTERACTIONS_DLQ.name, lambda rs: len(rs) >= 2 + 3
    )
    letters = [r.value["data"] for r in dead if r.value.get("type") == "leadflow.dead_letter"]
    assert len(letters) == 2
    assert base64.b64decode(letters[0]["original_value_base64"]) == b"{not json"
    assert letters[0]["source_topic"] == INTERACTIONS.name
    assert letters[0]["original_key"] == "someone"
    assert "not an interaction" in letters[0]["error"]


async def test_lead_routes_need_the_admin_key_and_validate(
    stack: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    _, scoring = stack
    assert (await scoring.get("/v1/leads", headers={"Authorization": ""})).status_code == 401
    assert (await scoring.get("/v1/leads/not-a-uuid")).status_code == 422
    missing = await scoring.get("/v1/leads/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    definitions = (await scoring.get("/v1/definitions")).json()
    assert definitions["name"] == "Acme default funnel"
    assert "Sales-ready lead (hand-off)" in definitions["document_markdown"]
    page = await scoring.get("/v1/definitions/document")
    assert page.text.startswith("<!doctype html>")
    ready = await scoring.get("/readyz")
    assert ready.json()["checks"] == {"database": True, "broker": True}

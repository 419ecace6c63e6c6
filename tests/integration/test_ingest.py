"""Ingest against the real broker: what a source sends is what lands on lead.interactions."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from shared.embedded import free_port, start_broker
from shared.settings import Settings
from shared.topics import INTERACTIONS
from tests.kafka_reader import read_ids, read_until
from tests.stacks import ingest_in_process, standard_webhook_headers

pytestmark = pytest.mark.integration

ALL = {"X-API-Key": "all-channels-key"}
WEB_ONLY = {"X-API-Key": "web-only-key"}


@pytest.fixture(scope="module")
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with ingest_in_process(settings) as http:
        yield http


def download(email: str = "Ada@Example.com ", **overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": f"test-{uuid.uuid4()}",
        "channel": "web",
        "type": "content_download",
        "time": "2026-11-20T10:00:00Z",
        "campaign": "q4-webinar",
        "contact": {"email": email, "company": "Analytical Engines", "country": "gb"},
        "properties": {"asset": "pricing.pdf", "url": "https://example.com/pricing"},
    }
    event.update(overrides)
    return event


async def test_an_accepted_event_is_in_the_log_with_its_envelope_and_key(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    event = download()
    response = await client.post("/v1/events", json=event, headers=ALL)
    assert response.status_code == 202
    assert response.json() == {"id": event["id"], "status": "accepted"}

    record = (await read_ids(settings.require_broker(), INTERACTIONS.name, {event["id"]}))[
        event["id"]
    ]
    assert record.key == "ada@example.com"
    envelope = record.value
    assert envelope["specversion"] == "1.0"
    assert envelope["type"] == "leadflow.interaction.web.content_download"
    assert envelope["source"] == "/ingest/events"
    assert envelope["subject"] == "ada@example.com"
    assert envelope["datacontenttype"] == "application/json"
    assert envelope["time"].startswith("2026-11-20T10:00:00")
    assert "definitions_version" not in envelope  # only scoring and router set it
    assert envelope["data"]["contact"] == {
        "email": "ada@example.com",
        "company": "Analytical Engines",
        "country": "GB",
    }
    assert envelope["data"]["properties"]["asset"] == "pricing.pdf"
    assert envelope["data"]["campaign"] == "q4-webinar"


async def test_ingest_assigns_id_and_time_and_keys_anonymous_visitors_by_cookie(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    event = {
        "channel": "social",
        "type": "follow",
        "contact": {"anonymous_id": "cookie-42"},
        "properties": {"network": "linkedin"},
    }
    before = datetime.now(UTC)
    response = await client.post("/v1/events", json=event, headers=ALL)
    assert response.status_code == 202
    event_id = response.json()["id"]
    assert uuid.UUID(event_id)

    record = (await read_ids(settings.require_broker(), INTERACTIONS.name, {event_id}))[event_id]
    assert record.key == "cookie-42"
    assert record.value["type"] == "leadflow.interaction.social.follow"
    assert datetime.fromisoformat(record.value["time"]) >= before - timedelta(seconds=1)


async def test_batch_answers_each_item_and_publishes_only_the_valid_ones(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    good = [download(f"b{index}@example.com") for index in range(3)]
    bad = download("not-an-email")
    response = await client.post(
        "/v1/events/batch", json={"events": [good[0], bad, good[1], good[2]]}, headers=ALL
    )
    assert response.status_code == 207
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (3, 1)
    assert [result["status"] for result in body["results"]] == [202, 422, 202, 202]
    assert body["results"][1]["errors"][0]["field"] == "contact.email"

    ids = {event["id"] for event in good}
    records = await read_until(
        settings.require_broker(),
        INTERACTIONS.name,
        lambda records: ids <= {record.value["id"] for record in records},
    )
    assert bad["id"] not in {record.value["id"] for record in records}


async def test_batch_status_is_202_when_all_and_400_when_none_are_accepted(
    client: httpx.AsyncClient,
) -> None:
    all_good = await client.post(
        "/v1/events/batch", json={"events": [download(), download()]}, headers=ALL
    )
    assert all_good.status_code == 202

    none_good = await client.post(
        "/v1/events/batch",
        json={"events": [download(contact={}), download(channel="fax")]},
        headers=ALL,
    )
    assert none_good.status_code == 400
    assert none_good.headers["content-type"] == "application/problem+json"
    fields = {error["field"] for error in none_good.json()["errors"]}
    assert fields == {"events[0].contact", "events[1].channel"}


async def test_batch_of_more_than_1000_is_refused_naming_events(
    client: httpx.AsyncClient,
) -> None:
    event = {"channel": "web", "type": "form_submit", "contact": {"anonymous_id": "a"}}
    response = await client.post("/v1/events/batch", json={"events": [event] * 1001}, headers=ALL)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "events"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"channel": "fax"}, "channel"),
        ({"type": "page_view", "properties": {}}, "properties"),
        ({"type": "teleport"}, "type"),
        ({"contact": {"email": "nobody"}}, "contact.email"),
        ({"contact": {"email": "a@example.com", "company_size": -3}}, "contact.company_size"),
        ({"time": "yesterday"}, "time"),
        ({"time": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}, "time"),
        ({"campaign": "Not A Key!"}, "campaign"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_invalid_fields_are_named_in_a_problem(
    client: httpx.AsyncClient, change: dict[str, Any], field: str
) -> None:
    response = await client.post("/v1/events", json=download(**change), headers=ALL)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422
    assert field in {error["field"] for error in problem["errors"]}


async def test_malformed_json_wrong_type_and_oversized_bodies(client: httpx.AsyncClient) -> None:
    malformed = await client.post(
        "/v1/events", content=b'{"channel": ', headers={**ALL, "Content-Type": "application/json"}
    )
    assert malformed.status_code == 400
    assert malformed.headers["content-type"] == "application/problem+json"

    wrong_type = await client.post(
        "/v1/events", content=b"channel=web", headers={**ALL, "Content-Type": "text/plain"}
    )
    assert wrong_type.status_code == 415

    too_big = download(properties={"asset": "x", "padding": "x" * 70_000})
    oversized = await client.post("/v1/events", json=too_big, headers=ALL)
    assert oversized.status_code == 413
    assert "larger than" in oversized.json()["detail"]


async def test_api_keys_are_required_and_scoped_to_channels(client: httpx.AsyncClient) -> None:
    missing = await client.post("/v1/events", json=download())
    assert missing.status_code == 401
    unknown = await client.post("/v1/events", json=download(), headers={"X-API-Key": "nope"})
    assert unknown.status_code == 401
    bearer = await client.post(
        "/v1/events", json=download(), headers={"Authorization": "Bearer web-only-key"}
    )
    assert bearer.status_code == 202

    email_open = download(channel="email", type="open", properties={})
    forbidden = await client.post("/v1/events", json=email_open, headers=WEB_ONLY)
    assert forbidden.status_code == 403
    assert forbidden.json()["errors"][0]["field"] == "channel"

    mixed = await client.post(
        "/v1/events/batch", json={"events": [download(), email_open]}, headers=WEB_ONLY
    )
    assert mixed.status_code == 207
    assert [result["status"] for result in mixed.json()["results"]] == [202, 403]


async def test_standard_webhook_good_bad_and_stale(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    event = download()
    del event["id"]
    body = json.dumps({"events": [event]}).encode()
    headers = standard_webhook_headers(body)
    good = await client.post("/v1/webhooks/standard", content=body, headers=headers)
    assert good.status_code == 202
    expected_id = f"webhook:{headers['webhook-id']}:0"
    assert good.json()["results"][0]["id"] == expected_id
    assert expected_id in await read_ids(
        settings.require_broker(), INTERACTIONS.name, {expected_id}
    )

    tampered = await client.post(
        "/v1/webhooks/standard", content=body.replace(b"pricing", b"pr1cing"), headers=headers
    )
    assert tampered.status_code == 401

    stale_headers = standard_webhook_headers(body, sent=datetime.now(UTC) - timedelta(minutes=6))
    stale = await client.post("/v1/webhooks/standard", content=body, headers=stale_headers)
    assert stale.status_code == 401

    unsigned = await client.post(
        "/v1/webhooks/standard", content=body, headers={"content-type": "application/json"}
    )
    assert unsigned.status_code == 401


async def test_unknown_or_unconfigured_webhook_provider_is_404(settings: Settings) -> None:
    async with ingest_in_process(settings.model_copy(update={"webhook_secrets": {}})) as http:
        for provider in ("standard", "mautic", "hubspot"):
            response = await http.post(
                f"/v1/webhooks/{provider}", json={}, headers={"webhook-id": "x"}
            )
            assert response.status_code == 404, provider


async def test_health_readiness_and_metrics(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"broker": True}
    metrics = (await client.get("/metrics")).text
    assert 'leadflow_ingest_events_total{channel="web",outcome="accepted"}' in metrics
    assert "leadflow_ingest_publish_seconds_bucket" in metrics
    assert 'route="/v1/events"' in metrics


async def test_broker_unreachable_answers_503_with_retry_after_quickly(settings: Settings) -> None:
    nowhere = settings.model_copy(update={"kafka_bootstrap_servers": f"127.0.0.1:{free_port()}"})
    async with ingest_in_process(nowhere) as http:
        started = time.monotonic()
        response = await http.post("/v1/events", json=download(), headers=ALL)
        assert time.monotonic() - started < 5
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        assert (await http.get("/readyz")).status_code == 503


async def test_broker_dying_after_start_answers_503_never_202(settings: Settings) -> None:
    own_broker = start_broker()
    try:
        own = settings.model_copy(update={"kafka_bootstrap_servers": own_broker.bootstrap_servers})
        async with ingest_in_process(own) as http:
            assert (await http.post("/v1/events", json=download(), headers=ALL)).status_code == 202
            own_broker.stop()
            started = time.monotonic()
            response = await http.post("/v1/events", json=download(), headers=ALL)
            assert time.monotonic() - started < 5
            assert response.status_code == 503
    finally:
        own_broker.stop()

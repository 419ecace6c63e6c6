"""Outbound webhooks against a real receiver that fails on purpose: every event arrives
acknowledged exactly once, in order per lead, signed with Standard Webhooks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from shared.settings import Settings
from tests.integration.test_router import demo_request, new_rep, queue_of
from tests.receivers import SILENCE, Receiver, running_receiver
from tests.stacks import ADMIN, ServedStack, served_stack

pytestmark = pytest.mark.integration

HOOKS = "/crm/hooks"
PAUSE_AFTER_SECONDS = 4  # longer than the 500, 429, silence (1 s) of the ordered test
WANTED = ["leadflow.handoff.assigned", "leadflow.handoff.accepted", "leadflow.sales.accept"]


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as running:
        yield running


@pytest.fixture(scope="module")
async def stack(settings: Settings, database_url: str) -> AsyncIterator[ServedStack]:
    quick = settings.model_copy(
        update={
            "database_url": database_url,
            "delivery_first_retry_seconds": 0.2,
            "delivery_timeout_seconds": 1,
            "subscription_pause_after_hours": PAUSE_AFTER_SECONDS / 3600,
        }
    )
    async with served_stack(quick) as served:
        yield served


async def subscribe(router: httpx.AsyncClient, url: str, event_types: list[str]) -> dict[str, Any]:
    response = await router.post(
        "/v1/subscriptions",
        json={"url": url, "event_types": event_types, "description": "the CRM"},
        headers=ADMIN,
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def deliveries_of(router: httpx.AsyncClient, subscription_id: str) -> list[dict[str, Any]]:
    response = await router.get(f"/v1/subscriptions/{subscription_id}/deliveries", headers=ADMIN)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


async def settled(
    router: httpx.AsyncClient, subscription_id: str, status: str = "delivered"
) -> list[dict[str, Any]]:
    """The subscription's deliveries, once all of them are in `status` (the router records
    an attempt just after the receiver answered it)."""
    async with asyncio.timeout(30):
        while True:
            found = await deliveries_of(router, subscription_id)
            if found and all(d["status"] == status for d in found):
                return found
            await asyncio.sleep(0.1)


async def test_every_event_arrives_once_in_order_per_lead_through_500_429_and_silence(
    stack: ServedStack, receiver: Receiver
) -> None:
    url = receiver.answers(HOOKS, 500, 429, SILENCE)
    subscription = await subscribe(stack.router, url, WANTED)
    assert subscription["secret"].startswith("whsec_")
    rep_id, token = await new_rep(stack.router, "Hook Rep", capacity=10)

    for n in range(3):
        await demo_request(stack.ingest, f"hooked-{n}@example.com")
    leads = await queue_of(stack.router, rep_id, token, 3)
    for lead in leads:
        accepted = await stack.router.post(f"/v1/leads/{lead['id']}/accept", headers=token)
        assert accepted.status_code == 200, accepted.text
    await receiver.wait_for(HOOKS, acknowledged=9)

    received = receiver.on(HOOKS)
    acknowledged = [r for r in received if r.acknowledged]
    ids = [r.headers["webhook-id"] for r in acknowledged]
    assert len(ids) == len(set(ids)) == 9, "each event acknowledged exactly once"
    assert [r.answer for r in received[:3]] == [500, 429, SILENCE]
    verifier = Webhook(subscription["secret"])
    for request in acknowledged:
        event = verifier.verify(request.body, request.headers)
        assert event["id"] == request.headers["webhook-id"]
        assert event["specversion"] == "1.0"
        assert request.headers["content-type"] == "application/cloudevents+json"

    # In order per lead: as the router recorded them (its deliveries, oldest first).
    recorded = sorted(await settled(stack.router, subscription["id"]), key=lambda d: d["id"])
    for lead in leads:
        expected = [d["event_id"] for d in recorded if d["lead_id"] == lead["id"]]
        arrived = [
            r.headers["webhook-id"] for r in acknowledged if r.json()["subject"] == lead["id"]
        ]
        assert arrived == expected
        assert [r.json()["type"] for r in acknowledged if r.json()["subject"] == lead["id"]] == [
            "leadflow.handoff.assigned",
            "leadflow.handoff.accepted",
            "leadflow.sales.accept",
        ]
    attempts = [a for d in recorded for a in d["attempt_log"]]
    assert len(attempts) == 9 + 3
    failed = [a for a in attempts if a["status_code"] != 200]
    assert sorted((a["status_code"] or 0) for a in failed) == [0, 429, 500]
    assert any(a["response_head"] == "answer 500" for a in failed)
    assert all(a["latency_ms"] >= 0 for a in attempts)


async def test_a_refusal_fails_at_once_and_can_be_redelivered(
    stack: ServedStack, receiver: Receiver
) -> None:
    url = receiver.answers("/gone", 410, then=204)
    subscription = await subscribe(stack.router, url, ["leadflow.handoff.assigned"])
    await new_rep(stack.router, "Gone Rep", capacity=10)
    await demo_request(stack.ingest, "refused@example.com")
    [delivery] = await settled(stack.router, subscription["id"], "failed")
    assert delivery["attempts"] == 1
    assert "410" in delivery["last_error"]

    again = await stack.router.post(
        f"/v1/subscriptions/{subscription['id']}/deliveries/{delivery['id']}/redeliver",
        headers=ADMIN,
    )
    assert again.status_code == 202, again.text
    [delivery] = await settled(stack.router, subscription["id"])
    assert [a["status_code"] for a in delivery["attempt_log"]] == [410, 204]


async def test_a_subscription_failing_for_its_whole_pause_period_is_paused(
    stack: ServedStack, receiver: Receiver
) -> None:
    url = receiver.answers("/down", then=503)
    subscription = await subscribe(stack.router, url, ["leadflow.handoff.assigned"])
    await new_rep(stack.router, "Down Rep", capacity=10)
    await demo_request(stack.ingest, "down@example.com")
    path = f"/v1/subscriptions/{subscription['id']}"
    async with asyncio.timeout(PAUSE_AFTER_SECONDS * 5):
        while True:
            paused = (await stack.router.get(path, headers=ADMIN)).json()
            if paused["status"] == "paused":
                break
            await asyncio.sleep(0.2)
    assert paused["paused_reason"].startswith("failing since")
    summary = (await stack.router.get("/v1/notifications/summary", headers=ADMIN)).json()
    assert subscription["id"] in [s["id"] for s in summary["paused_subscriptions"]]

    tried = len(receiver.on("/down"))
    receiver.otherwise["/down"] = 200
    resumed = await stack.router.post(f"{path}/resume", headers=ADMIN)
    assert resumed.json()["status"] == "active"
    await receiver.wait_for("/down", acknowledged=1)
    assert len(receiver.on("/down")) == tried + 1


async def test_a_rotated_secret_signs_beside_the_old_one_and_the_admin_api_manages_it(
    stack: ServedStack, receiver: Receiver
) -> None:
    url = receiver.answers("/rotated")
    subscription = await subscribe(stack.router, url, ["leadflow.handoff.assigned"])
    rotated = await stack.router.post(
        f"/v1/subscriptions/{subscription['id']}/rotate-secret", headers=ADMIN
    )
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["secret"]
    await new_rep(stack.router, "Rotated Rep", capacity=10)
    await demo_request(stack.ingest, "rotated@example.com")
    await receiver.wait_for("/rotated", acknowledged=1)
    [request] = receiver.on("/rotated")
    for secret in (subscription["secret"], new_secret):
        Webhook(secret).verify(request.body, request.headers)

    listed = (await stack.router.get("/v1/subscriptions", headers=ADMIN)).json()
    assert all("secret" not in s for s in listed), "a secret is shown only once"
    assert (
        await stack.router.post(f"/v1/subscriptions/{subscription['id']}/pause", headers=ADMIN)
    ).json()["status"] == "paused"
    gone = await stack.router.delete(f"/v1/subscriptions/{subscription['id']}", headers=ADMIN)
    assert gone.status_code == 204
    missing = await stack.router.get(f"/v1/subscriptions/{subscription['id']}", headers=ADMIN)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"

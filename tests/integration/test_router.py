"""The router against the real broker and PostgreSQL: hand-offs reach reps, reps act on them."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import partial
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from services.router.assigner import Assigner
from services.router.handlers import RouterService
from services.router.tables import consumer_offsets, handoff_log
from services.router.unit_of_work import CONSUMER_GROUP, unit_of_work
from shared.definitions import load_definitions
from shared.events import LeadProfile
from shared.settings import Settings
from shared.topics import HANDOFFS, INTERACTIONS_DLQ, LIFECYCLE, SALES_ACTIONS
from tests.fakes.router import hand_off_event
from tests.kafka_reader import ReadRecord, read_until
from tests.stacks import ADMIN, ServedStack, served_stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def stack(settings: Settings, database_url: str) -> AsyncIterator[ServedStack]:
    async with served_stack(settings.model_copy(update={"database_url": database_url})) as served:
        yield served


async def new_rep(
    router: httpx.AsyncClient, name: str, team: str = "dach", capacity: int = 1
) -> tuple[str, dict[str, str]]:
    response = await router.post(
        "/v1/reps", json={"name": name, "team": team, "capacity": capacity}, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return body["id"], {"Authorization": f"Bearer {body['token']}"}


async def demo_request(ingest: httpx.AsyncClient, email: str, country: str = "DE") -> None:
    event = {
        "channel": "web",
        "type": "demo_request",
        "campaign": "demo-request",
        "contact": {"email": email, "company": "Acme", "country": country},
    }
    assert (await ingest.post("/v1/events", json=event)).status_code == 202


async def queue_of(
    router: httpx.AsyncClient, rep_id: str, token: dict[str, str], size: int
) -> list[dict[str, Any]]:
    for _ in range(150):
        queue: list[dict[str, Any]] = (
            await router.get(f"/v1/reps/{rep_id}/queue", headers=token)
        ).json()
        if len(queue) == size:
            return queue
        await asyncio.sleep(0.1)
    raise AssertionError(f"queue of {rep_id} never had {size} leads")


async def read_stream(
    url: str, headers: dict[str, str], count: int, **params: str
) -> list[dict[str, Any]]:
    """The first `count` SSE events of the hand-off stream."""
    events: list[dict[str, Any]] = []
    async with (
        httpx.AsyncClient(timeout=15) as client,
        client.stream(
            "GET", f"{url}/v1/handoffs/stream", headers=headers, params=params
        ) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        current: dict[str, Any] = {}
        async for line in response.aiter_lines():
            if line.startswith("id: "):
                current["id"] = int(line[4:])
            elif line.startswith("data: "):
                current["data"] = json.loads(line[6:])
            elif line == "" and "data" in current:
                events.append(current)
                current = {}
                if len(events) == count:
                    return events
    return events


@asynccontextmanager
async def router_service(
    settings: Settings, clock: Callable[[], datetime] | None = None
) -> AsyncIterator[RouterService]:
    """One more router on the stack's database, to drive its loops one step by hand."""
    engine = create_async_engine(settings.require_database())
    assigner = Assigner(load_definitions(settings.definitions_path))
    if clock is not None:
        assigner.clock = clock
    try:
        yield RouterService(partial(unit_of_work, engine), assigner)
    finally:
        await engine.dispose()


async def handoff_kinds(database_url: str, lead_id: str) -> list[str]:
    """What the router logged for the lead, in order."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(handoff_log.c.kind)
                .where(handoff_log.c.lead_id == lead_id)
                .order_by(handoff_log.c.seq)
            )
            return list(rows.scalars())
    finally:
        await engine.dispose()


async def consumed_past(database_url: str, topic: str, partition: int, offset: int) -> None:
    """Wait until the router has stored its position past `offset`: the record at `offset`
    and every one before it in the partition are handled and committed."""
    engine = create_async_engine(database_url)
    query = select(consumer_offsets.c.next_offset).where(
        consumer_offsets.c.consumer_group == CONSUMER_GROUP,
        consumer_offsets.c.topic == topic,
        consumer_offsets.c.partition == partition,
    )
    try:
        for _ in range(150):
            async with engine.connect() as connection:
                if (await connection.scalar(query) or 0) > offset:
                    return
            await asyncio.sleep(0.1)
    finally:
        await engine.dispose()
    raise AssertionError(f"the router never got past {topic}/{partition}@{offset}")


async def test_a_hand_off_is_assigned_streamed_and_worked_by_its_rep(stack: ServedStack) -> None:
    ada, ada_token = await new_rep(stack.router, "Ada", capacity=5)
    _, bob_token = await new_rep(stack.router, "Bob", team="americas")
    await demo_request(stack.ingest, "cto@hotel-berlin.de")
    [lead] = await queue_of(stack.router, ada, ada_token, 1)
    assert lead["stage"] == "sql"
    assert lead["sla_deadline"] is not None

    [assigned] = await asyncio.wait_for(read_stream(stack.router_url, ada_token, 1), 15)
    assert assigned["data"]["type"] == "leadflow.handoff.assigned"
    assert assigned["data"]["data"]["rep_id"] == ada
    assert assigned["data"]["definitions_version"]

    lead_url = f"/v1/leads/{lead['id']}"
    assert (await stack.router.post(f"{lead_url}/accept", headers=bob_token)).status_code == 403
    missing = await stack.router.post(
        "/v1/leads/00000000-0000-0000-0000-000000000000/accept", headers=ada_token
    )
    assert missing.status_code == 404
    early = await stack.router.post(f"{lead_url}/convert", json={}, headers=ada_token)
    assert early.status_code == 409
    assert early.json()["allowed"] == ["accept", "reject"]

    assert (await stack.router.post(f"{lead_url}/accept", headers=ada_token)).json()[
        "stage"
    ] == "sal"
    qualified = await stack.router.post(
        f"{lead_url}/qualify", json={"budget": "50k", "requirements": "SSO"}, headers=ada_token
    )
    assert qualified.json()["stage"] == "sal"  # the default definitions have no qualify stage
    incomplete = await stack.router.post(
        f"{lead_url}/convert", json={"budget": "50k"}, headers=ada_token
    )
    assert incomplete.status_code == 422
    assert [e["field"] for e in incomplete.json()["errors"]] == ["timeframe"]
    converted = await stack.router.post(
        f"{lead_url}/convert", json={"budget": "50k", "timeframe": "Q1"}, headers=ada_token
    )
    assert converted.json()["stage"] == "opportunity"
    won = await stack.router.post(
        f"{lead_url}/close", json={"outcome": "won", "amount": 48000}, headers=ada_token
    )
    assert won.json()["stage"] == "won"
    assert await queue_of(stack.router, ada, ada_token, 0) == []

    # Resuming the stream after the first event replays the rest, in order.
    rest = await asyncio.wait_for(read_stream(stack.router_url, ADMIN, 1, rep=ada), 15)
    assert rest[0]["data"]["type"] == "leadflow.handoff.assigned"
    resumed = await asyncio.wait_for(
        read_stream(stack.router_url, {**ADMIN, "Last-Event-ID": str(rest[0]["id"])}, 1, rep=ada),
        15,
    )
    assert resumed[0]["data"]["type"] == "leadflow.handoff.accepted"
    assert (await stack.router.get(f"/v1/reps/{ada}/queue", headers=bob_token)).status_code == 403

    facts = await read_until(
        stack.broker,
        SALES_ACTIONS.name,
        lambda rs: len([r for r in rs if r.key == lead["id"]]) >= 4,
    )
    actions = [r.value["data"]["action"] for r in facts if r.key == lead["id"]]
    assert actions == ["accept", "qualify", "convert", "won"]

    # The funnel projection saw every stage change: scoring's hand-off and the reps' moves.
    for _ in range(50):
        funnel = (await stack.router.get("/v1/reports/funnel", headers=ADMIN)).json()
        reached = (
            {s["stage"]: s["leads"] for s in funnel["slices"][0]["stages"]}
            if funnel["slices"]
            else {}
        )
        if reached.get("won"):
            break
        await asyncio.sleep(0.1)
    assert all(reached[stage] >= 1 for stage in ("sql", "sal", "opportunity", "won"))
    won_fact = next(
        r.value["data"] for r in facts if r.key == lead["id"] and r.value["data"]["action"] == "won"
    )
    assert (won_fact["rep_id"], won_fact["details"]) == (ada, {"amount": 48000.0})


async def test_capacity_full_queues_and_a_closed_lead_frees_a_place(stack: ServedStack) -> None:
    solo, token = await new_rep(stack.router, "Solo", team="emea", capacity=1)
    await demo_request(stack.ingest, "first@firm-uk.co.uk", country="GB")
    [first] = await queue_of(stack.router, solo, token, 1)
    await demo_request(stack.ingest, "second@firm-uk.co.uk", country="GB")

    def queued(records: list[ReadRecord]) -> list[str]:
        return [r.key for r in records if r.value["data"].get("kind") == "queued"]

    waiting = await read_until(stack.broker, HANDOFFS.name, lambda rs: bool(queued(rs)))
    assert first["id"] not in queued(waiting)
    [still] = await queue_of(stack.router, solo, token, 1)  # the second waits
    assert still["id"] == first["id"]

    await stack.router.post(f"/v1/leads/{first['id']}/accept", headers=token)
    lost = await stack.router.post(
        f"/v1/leads/{first['id']}/close", json={"outcome": "lost"}, headers=token
    )
    assert lost.status_code == 200
    [second] = await queue_of(stack.router, solo, token, 1)
    assert second["id"] != first["id"]

    # While it waited, the queue was polled many times: it joined the queue once, and left
    # it once, for a rep.
    def kinds_of_second(records: list[ReadRecord]) -> list[str]:
        return [r.value["data"]["kind"] for r in records if r.key == second["id"]]

    handoffs = await read_until(
        stack.broker, HANDOFFS.name, lambda rs: "assigned" in kinds_of_second(rs)
    )
    assert kinds_of_second(handoffs) == ["queued", "assigned"]


async def test_roster_needs_the_admin_key_and_valid_fields(stack: ServedStack) -> None:
    assert (await stack.router.get("/v1/reps")).status_code == 401
    bad = await stack.router.post("/v1/reps", json={"name": "X", "team": "mars"}, headers=ADMIN)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "team"
    zone = await stack.router.post(
        "/v1/reps", json={"name": "X", "team": "dach", "timezone": "Mars/Olympus"}, headers=ADMIN
    )
    assert zone.status_code == 422
    roster = (await stack.router.get("/v1/reps", headers=ADMIN)).json()
    assert all("token" not in rep for rep in roster)


async def test_an_unreadable_lifecycle_record_goes_to_the_dlq(stack: ServedStack) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.broker)
    await producer.start()
    try:
        await producer.send_and_wait(LIFECYCLE.name, b"\x00 not json", key=b"lead-x")
    finally:
        await producer.stop()

    def letters(records: list[ReadRecord]) -> list[dict[str, Any]]:
        return [
            r.value["data"]
            for r in records
            if r.value.get("type") == "leadflow.dead_letter"
            and r.value["data"]["source_topic"] == LIFECYCLE.name
        ]

    dead = await read_until(stack.broker, INTERACTIONS_DLQ.name, lambda rs: bool(letters(rs)))
    [letter] = letters(dead)
    assert letter["original_key"] == "lead-x"
    assert letter["error"].startswith("not a lifecycle event")
    await demo_request(stack.ingest, "still-routed@madrid-co.es", country="ES")
    rep, token = await new_rep(stack.router, "Paula", team="emea", capacity=5)
    assert len(await queue_of(stack.router, rep, token, 1)) == 1  # the router went on


async def test_a_hand_off_published_again_routes_the_lead_once(
    stack: ServedStack, settings: Settings, database_url: str
) -> None:
    """An outbox published again (a lost connection, a lost broker log) repeats events, even
    within one batch: the lead is routed once."""
    lead_id = str(uuid.uuid4())
    profile = LeadProfile(email="twice@acme-corp.us", company="Acme", country="US")
    hand_off = hand_off_event(lead_id, profile, datetime.now(UTC)).model_dump_json().encode()
    producer = AIOKafkaProducer(bootstrap_servers=stack.broker, linger_ms=50)
    await producer.start()
    try:
        copies = [await producer.send(LIFECYCLE.name, hand_off, key=lead_id.encode()) for _ in "ab"]
        await asyncio.gather(*copies)
        last = await producer.send_and_wait(LIFECYCLE.name, hand_off, key=lead_id.encode())
    finally:
        await producer.stop()

    await consumed_past(database_url, LIFECYCLE.name, last.partition, last.offset)
    # One more turn of the follow-up loop: a queued lead is not announced again.
    async with router_service(settings.model_copy(update={"database_url": database_url})) as more:
        await more.drain_queue()
    # queued, or assigned where a rep could take it
    assert len(await handoff_kinds(database_url, lead_id)) == 1

"""Scoring notices what the broker and the clock do behind its back.

The embedded broker forgets everything when it restarts; decay takes scores below a
threshold without any new interaction. Neither may go unnoticed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from services.scoring.bootstrap import create_app as create_scoring
from shared.embedded import free_port, start_broker
from shared.kafka import admin_client, create_topics
from shared.settings import Settings
from shared.topics import CATALOG, LIFECYCLE
from tests.integration.test_scoring import lead_by_email
from tests.kafka_reader import read_until
from tests.stacks import ADMIN, API_KEY, ingest_and_scoring, ingest_in_process

pytestmark = pytest.mark.integration


def visit(email: str) -> dict[str, Any]:
    return {
        "channel": "email",
        "type": "click",
        "contact": {"email": email},
        "properties": {"url": "/x"},
    }


class RestartableBroker:
    """A broker on a port of its own, which can come back empty at the same address."""

    def __init__(self) -> None:
        self.port = free_port()
        self.broker = start_broker(self.port)

    def restart_empty(self) -> None:
        self.broker.stop()
        self.broker = start_broker(self.port)


@asynccontextmanager
async def broker_of_its_own(
    settings: Settings, database_url: str
) -> AsyncIterator[tuple[Settings, RestartableBroker]]:
    """Settings for a broker of the test's own (topics created), stopped at the end."""
    broker = RestartableBroker()
    try:
        configured = settings.model_copy(
            update={
                "kafka_bootstrap_servers": f"127.0.0.1:{broker.port}",
                "database_url": database_url,
            }
        )
        await create_topics(configured)
        yield configured, broker
    finally:
        broker.broker.stop()


async def test_a_broker_that_lost_its_log_is_noticed_and_nothing_new_is_skipped(
    settings: Settings, database_url: str
) -> None:
    async with broker_of_its_own(settings, database_url) as (configured, broker):
        async with ingest_and_scoring(configured) as (ingest, scoring):
            for n in range(3):
                assert (
                    await ingest.post("/v1/events", json=visit(f"before-{n}@example.com"))
                ).status_code == 202
            for n in range(3):
                await lead_by_email(scoring, f"before-{n}@example.com")
        broker.restart_empty()  # same address, empty memory: offsets start at 0 again
        await create_topics(configured)
        async with ingest_and_scoring(configured) as (ingest, scoring):
            # More records than before, so every stored offset is inside the new log:
            # only the partition markers can tell the logs apart.
            emails = [f"after-{n}@example.com" for n in range(30)]
            for email in emails:
                assert (await ingest.post("/v1/events", json=visit(email))).status_code == 202
            for email in emails:
                await lead_by_email(scoring, email)


@dataclass
class Clock:
    """The time now, plus the days the test skips."""

    skipped: timedelta = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.skipped


async def test_decay_below_a_threshold_is_found_by_a_timer(
    settings: Settings, database_url: str
) -> None:
    configured = settings.model_copy(update={"database_url": database_url})
    clock = Clock()
    app = create_scoring(configured)
    app.state.scoring.now = clock
    async with (
        ingest_in_process(configured, API_KEY) as ingest,
        LifespanManager(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://scoring", headers=ADMIN
        ) as scoring,
    ):
        contact = {"email": "fading@example.com", "company": "Acme"}
        now = datetime.now(UTC).isoformat()
        for kind in ("meeting", "booth_visit"):  # 40 + 15 = 55 points
            event = {"channel": "tradeshow", "type": kind, "time": now, "contact": contact}
            assert (await ingest.post("/v1/events", json=event)).status_code == 202
        lead = await lead_by_email(scoring, "fading@example.com", stage="mql")

        clock.skipped = timedelta(days=10)  # a 30-day half-life: 55 points are 43.7 by then

        def crossings(records: list[Any]) -> list[tuple[float, str]]:
            return [
                (r.value["data"]["threshold"], r.value["data"]["direction"])
                for r in records
                if r.value.get("subject") == lead["id"]
                and r.value["data"]["kind"] == "threshold_crossed"
            ]

        records = await read_until(
            configured.require_broker(),
            LIFECYCLE.name,
            lambda rs: len(crossings(rs)) >= 2,
            within_seconds=20,
        )
        assert crossings(records) == [(50.0, "up"), (50.0, "down")]
        later = (await scoring.get(f"/v1/leads/{lead['id']}")).json()
        assert later["score"] < 50
        assert later["stage"] == "mql"  # stages do not move back when points decay


async def post_until_accepted(ingest: httpx.AsyncClient, event: dict[str, Any]) -> None:
    """What a real sender does: retry a refused post until it is accepted."""
    for _ in range(200):
        response = await ingest.post("/v1/events", json=event)
        if response.status_code == 202:
            return
        assert response.status_code == 503, response.text
        await asyncio.sleep(0.1)
    raise AssertionError("ingest never accepted the event")


async def test_a_broker_that_comes_back_empty_under_load_heals_without_an_operator(
    settings: Settings, database_url: str
) -> None:
    """Nothing recreates the topics but the services, and no accepted interaction is lost."""
    async with broker_of_its_own(settings, database_url) as (configured, broker):
        async with ingest_and_scoring(configured) as (ingest, scoring):
            before = [f"load-before-{n}@example.com" for n in range(20)]
            for email in before:
                await post_until_accepted(ingest, {**visit(email), "id": f"id-{email}"})
            for email in before:
                await lead_by_email(scoring, email)

            broker.restart_empty()  # no topics, no groups, offsets from 0
            after = [f"load-after-{n}@example.com" for n in range(50)]
            for email in after:
                await post_until_accepted(ingest, visit(email))
            # A sender that never heard back sends an old event again: counted once.
            await post_until_accepted(ingest, {**visit(before[0]), "id": f"id-{before[0]}"})

            missing = await scored_within(scoring, after, 30)
            assert not missing, f"{len(missing)} accepted interactions never scored"
            for email in before:
                assert (await lead_by_email(scoring, email))["interaction_count"] == 1

        async with admin_client(configured) as admin:
            described = await admin.describe_topics([topic.name for topic in CATALOG])
        assert {t["topic"]: len(t["partitions"]) for t in described} == {
            topic.name: configured.topic_partitions for topic in CATALOG
        }


async def scored_within(scoring: httpx.AsyncClient, emails: list[str], seconds: float) -> set[str]:
    """The emails that have no lead yet when `seconds` are up."""
    deadline = asyncio.get_running_loop().time() + seconds
    missing = set(emails)
    while missing and asyncio.get_running_loop().time() < deadline:
        for email in list(missing):
            page = (await scoring.get("/v1/leads", params={"email": email})).json()
            if page["items"]:
                missing.discard(email)
        await asyncio.sleep(0.2)
    return missing


async def test_what_ingest_accepted_but_nobody_read_survives_a_broker_that_lost_it(
    settings: Settings, database_url: str
) -> None:
    async with (
        broker_of_its_own(settings, database_url) as (configured, broker),
        ingest_in_process(configured, API_KEY) as ingest,
    ):
        unread = [f"unread-{n}@example.com" for n in range(10)]
        for email in unread:
            await post_until_accepted(ingest, visit(email))  # scoring is not running
        broker.restart_empty()
        later = [f"later-{n}@example.com" for n in range(5)]
        for email in later:
            await post_until_accepted(ingest, visit(email))
        async with ingest_and_scoring(configured) as (_, scoring):
            assert not await scored_within(scoring, unread + later, 30)

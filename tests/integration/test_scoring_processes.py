"""Scoring as processes: kill -9 between steps, two instances in one group; none lost or doubled."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from services.ingest.domain import Rejected, parse_interaction, record_interaction
from services.scoring.tables import interactions, leads
from services.scoring.unit_of_work import CONSUMER_GROUP
from shared.embedded import stop_process
from shared.kafka import admin_client
from shared.settings import Settings
from shared.topics import INTERACTIONS, LIFECYCLE
from tests.kafka_reader import ReadRecord, read_until
from tests.processes import ServiceProcess, start_service

pytestmark = pytest.mark.integration

LEADS_PER_ROUND = 12
# Recent, so that decay cannot take anyone below a threshold during the test.
START = datetime.now(UTC) - timedelta(hours=12)


def interactions_of(email: str, hour: int) -> list[dict[str, Any]]:
    """A history that takes a lead to the hand-off: form (mql with fit), pricing, meeting."""
    contact = {
        "email": email,
        "company": "Acme",
        "job_title": "CTO",
        "company_size": 500,
        "country": "DE",
    }
    at = START + timedelta(hours=hour)
    return [
        {"channel": "web", "type": "form_submit", "time": at.isoformat(), "contact": contact},
        {
            "channel": "web",
            "type": "page_view",
            "time": (at + timedelta(minutes=5)).isoformat(),
            "contact": {"email": email},
            "properties": {"url": "/pricing"},
        },
        {
            "channel": "tradeshow",
            "type": "meeting",
            "time": (at + timedelta(hours=2)).isoformat(),
            "contact": {"email": email},
        },
    ]


async def produce(settings: Settings, prefix: str, count: int = LEADS_PER_ROUND) -> list[str]:
    producer = AIOKafkaProducer(bootstrap_servers=settings.require_broker(), acks="all")
    await producer.start()
    emails = [f"{prefix}-{n}@example.com" for n in range(count)]
    try:
        sends = []
        for n, email in enumerate(emails):
            for raw in interactions_of(email, n % 5):
                parsed = parse_interaction(raw)
                assert not isinstance(parsed, Rejected)
                event = record_interaction(parsed, source="/test", received_at=datetime.now(UTC))
                sends.append(
                    await producer.send(
                        INTERACTIONS.name,
                        event.model_dump_json().encode(),
                        key=event.subject.encode(),
                    )
                )
        await asyncio.gather(*sends)
    finally:
        await producer.stop()
    return emails


async def wait_for_stage(
    database_url: str, emails: list[str], stage: str, within: float = 60
) -> None:
    engine = create_async_engine(database_url)
    try:
        deadline = asyncio.get_running_loop().time() + within
        while asyncio.get_running_loop().time() < deadline:
            async with engine.connect() as connection:
                done = await connection.scalar(
                    select(func.count())
                    .select_from(leads)
                    .where(leads.c.email.in_(emails), leads.c.stage == stage)
                )
            if done == len(emails):
                return
            await asyncio.sleep(0.2)
        raise AssertionError(f"not every lead reached {stage}")
    finally:
        await engine.dispose()


async def wait_for_exit(service: ServiceProcess, within: float = 30) -> int:
    deadline = asyncio.get_running_loop().time() + within
    while service.process.poll() is None:
        assert asyncio.get_running_loop().time() < deadline, "the failpoint was never reached"
        await asyncio.sleep(0.1)
    return service.process.returncode


async def wait_for_members(settings: Settings, count: int, within: float = 30) -> None:
    """Until scoring's consumer group has settled with `count` members."""
    deadline = asyncio.get_running_loop().time() + within
    async with admin_client(settings) as admin:
        while asyncio.get_running_loop().time() < deadline:
            (described,) = await admin.describe_consumer_groups([CONSUMER_GROUP])
            _, _, state, _, _, members = described.groups[0]
            if (state, len(members)) == ("Stable", count):
                return
            await asyncio.sleep(0.2)
    raise AssertionError(f"the group never settled on {count} members")


def transitions(records: list[ReadRecord], lead_ids: set[str]) -> dict[tuple[Any, ...], set[str]]:
    """Each lifecycle fact of these leads -> the event ids it was published under."""
    ids: dict[tuple[Any, ...], set[str]] = defaultdict(set)
    for record in records:
        data = record.value.get("data", {})
        if record.value.get("subject") in lead_ids:
            fact = (
                data["lead_id"],
                data["kind"],
                data.get("to_stage"),
                data.get("threshold"),
                data.get("direction"),
            )
            ids[fact].add(record.value["id"])
    return ids


async def lead_ids(database_url: str, emails: list[str]) -> set[str]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            return set(
                await connection.scalars(select(leads.c.id).where(leads.c.email.in_(emails)))
            )
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def configured(settings: Settings, database_url: str) -> Settings:
    return settings.model_copy(update={"database_url": database_url})


@pytest.fixture
def services(tmp_path: Path) -> Iterator[list[ServiceProcess]]:
    started: list[ServiceProcess] = []
    try:
        yield started
    finally:
        for service in started:
            stop_process(service.process)


@pytest.mark.parametrize("failpoint", ["scoring.after_commit", "outbox.after_publish"])
async def test_kill_9_between_steps_loses_nothing_and_doubles_no_effect(
    configured: Settings,
    database_url: str,
    tmp_path: Path,
    services: list[ServiceProcess],
    failpoint: str,
) -> None:
    emails = await produce(configured, failpoint.replace(".", "-"))
    dying = start_service(
        "scoring",
        configured,
        tmp_path / "dying.log",
        wait_ready=False,
        LEADFLOW_FAILPOINT=failpoint,
    )
    services.append(dying)
    assert await wait_for_exit(dying) == -9

    survivor = start_service("scoring", configured, tmp_path / "survivor.log")
    services.append(survivor)
    await wait_for_stage(database_url, emails, "sql")
    ids = await lead_ids(database_url, emails)
    assert len(ids) == len(emails)

    expected_facts = len(emails) * 5  # inquiry, mql, sql, threshold 50 up, threshold 100 up
    records = await read_until(
        configured.require_broker(),
        LIFECYCLE.name,
        lambda rs: len(transitions(rs, ids)) >= expected_facts,
    )
    facts = transitions(records, ids)
    assert len(facts) == expected_facts
    assert all(len(event_ids) == 1 for event_ids in facts.values()), "a fact was emitted twice"
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            stored = await connection.scalar(
                select(func.count())
                .select_from(interactions)
                .where(interactions.c.lead_id.in_(ids))
            )
            pending = await connection.scalar(
                text("SELECT count(*) FROM scoring.outbox WHERE sent_at IS NULL")
            )
    finally:
        await engine.dispose()
    assert stored == len(emails) * 3
    assert pending == 0


async def test_two_instances_share_the_partitions_and_agree_with_one(
    configured: Settings, database_url: str, tmp_path: Path, services: list[ServiceProcess]
) -> None:
    services.append(start_service("scoring", configured, tmp_path / "a.log"))
    services.append(start_service("scoring", configured, tmp_path / "b.log"))
    await wait_for_members(configured, 2)
    emails = await produce(configured, "pair", count=30)
    await wait_for_stage(database_url, emails, "sql")
    ids = await lead_ids(database_url, emails)
    records = await read_until(
        configured.require_broker(),
        LIFECYCLE.name,
        lambda rs: len(transitions(rs, ids)) >= len(emails) * 5,
    )
    facts = transitions(records, ids)
    assert len(facts) == len(emails) * 5
    assert all(len(event_ids) == 1 for event_ids in facts.values())
    logs = [(tmp_path / name).read_text() for name in ("a.log", "b.log")]
    assert all(service.process.poll() is None for service in services)
    assert all("Traceback" not in log for log in logs)

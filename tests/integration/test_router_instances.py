"""Three router processes on one broker and one database share the hand-offs and the queue
(and a fourth joins and leaves while they work): no rep is ever over capacity, no lead is
assigned twice, no transaction deadlocks, and a team's rotation stays exact whichever
instance routes each lead."""

from __future__ import annotations

import asyncio
import random
import signal
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.router.unit_of_work import CONSUMER_GROUP
from shared.embedded import stop_processes
from shared.events import LeadProfile
from shared.kafka import admin_client, new_producer, send_in_batches
from shared.settings import Settings
from shared.topics import LIFECYCLE
from tests.fakes.router import hand_off_event
from tests.processes import ServiceProcess, start_service
from tests.stacks import ADMIN

pytestmark = pytest.mark.integration

ROUTERS = 3
SETTLED_WITHIN = 60.0
POLL_SECONDS = 0.2
ENTERPRISE_SIZE = 5_000  # of lead-definitions.yaml: 1,000 employees or more
SMALL_SIZE = 50


@dataclass
class Routers:
    """`leadflow serve router` processes in one consumer group, on the test's broker and
    database: each is stopped by pid, and what it logged is checked."""

    settings: Settings
    logs: Path
    started: list[ServiceProcess] = field(default_factory=list)

    def start(self, number: int) -> ServiceProcess:
        router = start_service("router", self.settings, self.logs / f"router-{number}.log")
        self.started.append(router)
        return router

    def stop(self, routers: Sequence[ServiceProcess]) -> None:
        stop_processes([(router.process, signal.SIGTERM) for router in routers])

    @property
    def first(self) -> list[ServiceProcess]:
        return self.started[:ROUTERS]


@pytest.fixture(scope="module")
async def routers(
    settings: Settings, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Routers]:
    """Three routers, all consuming."""
    served = settings.model_copy(update={"database_url": database_url})
    routers = Routers(served, tmp_path_factory.mktemp("routers"))
    try:
        await asyncio.gather(*(asyncio.to_thread(routers.start, n) for n in range(ROUTERS)))
        await until_every_router_consumes(settings)
        yield routers
        assert all(router.process.poll() is None for router in routers.first)
    finally:
        routers.stop(routers.started)
    for router in routers.started:
        log = router.log_path.read_text()
        assert "deadlock detected" not in log, router.log_path.name
        assert "Traceback" not in log, router.log_path.name


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url, pool_size=2)
    try:
        yield engine
    finally:
        await engine.dispose()


async def until_every_router_consumes(settings: Settings) -> None:
    """Until the routers' group is stable with every router in it."""
    deadline = asyncio.get_running_loop().time() + SETTLED_WITHIN
    async with admin_client(settings) as admin:
        while asyncio.get_running_loop().time() < deadline:
            (described,) = await admin.describe_consumer_groups([CONSUMER_GROUP])
            _, _, state, _, _, members = described.groups[0]
            if state == "Stable" and len(members) == ROUTERS:
                return
            await asyncio.sleep(POLL_SECONDS)
    raise AssertionError(f"the routers' group never had {ROUTERS} members")


async def hire(
    router: ServiceProcess, team: str, capacity: int, weights: Sequence[float]
) -> dict[str, dict[str, str]]:
    """A rep of `team` per weight; rep id -> their bearer token."""
    reps = {}
    async with httpx.AsyncClient(base_url=router.url, headers=ADMIN, timeout=10) as client:
        for number, weight in enumerate(weights):
            rep = {"name": f"{team} {number}", "team": team, "capacity": capacity}
            answer = await client.post("/v1/reps", json=rep | {"weight": weight})
            assert answer.status_code == 201, answer.text
            body = answer.json()
            reps[body["id"]] = {"Authorization": f"Bearer {body['token']}"}
    return reps


def hand_offs(
    count: int, *, country: str, company_size: int, accounts: int
) -> list[tuple[str, bytes, bytes]]:
    """(topic, key, value) of `count` hand-offs of new leads from `accounts` companies."""
    now, records = datetime.now(UTC), []
    for number in range(count):
        lead_id = str(uuid.uuid4())
        domain = f"{country.lower()}-{company_size}-{number % accounts}.example.com"
        profile = LeadProfile(
            email=f"buyer{number}@{domain}", country=country, company_size=company_size
        )
        event = hand_off_event(lead_id, profile, now).model_dump_json().encode()
        records.append((LIFECYCLE.name, lead_id.encode(), event))
    return records


async def send(settings: Settings, records: list[tuple[str, bytes, bytes]]) -> None:
    producer = new_producer(settings)
    await producer.start()
    try:
        await send_in_batches(producer, records)
    finally:
        await producer.stop()


async def scalar_rows(engine: AsyncEngine, sql: str, **params: Any) -> list[Any]:
    async with engine.connect() as connection:
        return list((await connection.execute(text(sql), params)).all())


# What the routers have done so far: hand-offs seen, leads returned, queued, assigned, and
# the reps' open-lead counters.
PROGRESS_SQL = """
SELECT (SELECT count(*) FROM router.processed_events),
       (SELECT count(*) FROM router.leads WHERE status = 'returned'),
       (SELECT count(*) FROM router.leads WHERE status = 'queued'),
       (SELECT count(*) FROM router.leads WHERE status = 'assigned'),
       (SELECT sum(open_leads) FROM router.reps)
"""


async def until_true(engine: AsyncEngine, sql: str, what: str, **params: Any) -> None:
    deadline = asyncio.get_running_loop().time() + SETTLED_WITHIN
    while asyncio.get_running_loop().time() < deadline:
        if (await scalar_rows(engine, sql, **params))[0][0]:
            return
        await asyncio.sleep(POLL_SECONDS)
    progress = await scalar_rows(engine, PROGRESS_SQL)
    raise AssertionError(f"never: {what}; so far {progress}")


LEADS_PER_REP = """
SELECT reps.name, count(leads.id) FROM router.reps
LEFT JOIN router.leads ON leads.rep_id = reps.id AND leads.status IN ('assigned', 'accepted')
WHERE reps.team = ANY(:teams) GROUP BY reps.name
"""


async def test_round_robin_and_weighted_turns_stay_exact_across_instances(
    routers: Routers, settings: Settings, engine: AsyncEngine
) -> None:
    await hire(routers.first[0], "dach", 1_000, [1, 1, 1, 1])
    await hire(routers.first[1], "emea", 1_000, [2, 1, 1])
    dach = hand_offs(100, country="DE", company_size=SMALL_SIZE, accounts=100)
    emea = hand_offs(100, country="GB", company_size=SMALL_SIZE, accounts=100)
    await send(settings, [record for pair in zip(dach, emea, strict=True) for record in pair])
    await until_true(
        engine,
        "SELECT count(*) = 200 FROM router.leads WHERE status = 'assigned'",
        "every hand-off assigned",
    )

    per_rep = dict(await scalar_rows(engine, LEADS_PER_REP, teams=["dach", "emea"]))
    assert per_rep == {
        "dach 0": 25,
        "dach 1": 25,
        "dach 2": 25,
        "dach 3": 25,
        "emea 0": 50,
        "emea 1": 25,
        "emea 2": 25,
    }


COMPANIES = 30


async def test_a_company_handed_off_in_two_teams_has_one_owner_whichever_router_routes_it(
    routers: Routers, settings: Settings, engine: AsyncEngine
) -> None:
    # The rotation test's reps, with room to spare: whoever gets a company's first lead owns
    # the account, and its lead in the other team's territory goes to them too.
    germans: list[str] = []
    britons: list[str] = []
    records = []
    now = datetime.now(UTC)
    for company in range(COMPANIES):
        for country, leads in (("DE", germans), ("GB", britons)):
            lead_id = str(uuid.uuid4())
            profile = LeadProfile(email=f"{country}@owned{company}.example.com", country=country)
            event = hand_off_event(lead_id, profile, now).model_dump_json().encode()
            records.append((LIFECYCLE.name, lead_id.encode(), event))
            leads.append(lead_id)
    await send(settings, records)
    await until_true(
        engine,
        "SELECT count(*) = :leads FROM router.leads WHERE status = 'assigned'",
        "every hand-off assigned",
        leads=200 + 2 * COMPANIES,
    )

    rep_of = dict(
        await scalar_rows(
            engine,
            "SELECT id::text, rep_id::text FROM router.leads WHERE id = ANY(CAST(:ids AS uuid[]))",
            ids=germans + britons,
        )
    )
    assert [rep_of[german] for german in germans] == [rep_of[briton] for briton in britons]


# --- 5,000 hand-offs for too few reps while reps send leads back --------------------------

AMERICAS, ENTERPRISE = 4_000, 1_000
EARLIER = 200 + 2 * COMPANIES  # hand-offs of the tests above, all assigned
REJECTS = 150
CAPACITY_SQL = """
SELECT reps.name, reps.capacity, reps.open_leads,
       (SELECT count(*) FROM router.leads
        WHERE leads.rep_id = reps.id AND leads.status IN ('assigned', 'accepted')) AS holds
FROM router.reps WHERE reps.team IN ('americas', 'enterprise')
"""
# Settled: every hand-off stored, and a team's leads wait only while all its reps are full.
SETTLED_SQL = """
SELECT (SELECT count(*) FROM router.processed_events) = :hand_offs
   AND (SELECT count(*) FROM router.leads WHERE status = 'returned') = :rejects
   AND NOT EXISTS (
       SELECT 1 FROM router.leads queued JOIN router.reps ON reps.team = queued.team
       WHERE queued.status = 'queued' AND reps.open_leads < reps.capacity)
"""


async def over_capacity(engine: AsyncEngine) -> list[tuple[str, int, int, int]]:
    """Reps holding more leads than their capacity (and their counters), in one snapshot."""
    rows = await scalar_rows(engine, CAPACITY_SQL)
    return [row for row in rows if row.holds > row.capacity]


async def watch_capacity(engine: AsyncEngine, stop: asyncio.Event) -> list[Any]:
    """Snapshots of what reps hold, until `stop`: the reps over capacity in any of them."""
    seen: list[Any] = []
    while not stop.is_set():
        seen += await over_capacity(engine)
        await asyncio.sleep(POLL_SECONDS)
    return seen


async def send_back(
    routers: list[ServiceProcess], engine: AsyncEngine, tokens: dict[str, dict[str, str]]
) -> None:
    """Reps return REJECTS of their leads to marketing, through every router in turn, while
    hand-offs keep coming: each makes room that a queued lead takes."""
    rng = random.Random(13)
    sent_back = 0
    clients = [httpx.AsyncClient(base_url=router.url, timeout=10) for router in routers]
    try:
        while sent_back < REJECTS:
            held = await scalar_rows(
                engine,
                "SELECT id, rep_id FROM router.leads WHERE status = 'assigned'"
                " AND rep_id = ANY(CAST(:reps AS uuid[])) LIMIT 20",
                reps=list(tokens),
            )
            if not held:
                await asyncio.sleep(POLL_SECONDS)
            for lead_id, rep_id in rng.sample(held, min(len(held), 5)):
                client = clients[sent_back % len(clients)]
                answer = await client.post(
                    f"/v1/leads/{lead_id}/reject",
                    json={"reason": "no_budget"},
                    headers=tokens[str(rep_id)],
                )
                assert answer.status_code == 200, answer.text
                sent_back += 1
    finally:
        for client in clients:
            await client.aclose()


async def test_many_hand_offs_never_overbook_a_rep_nor_assign_a_lead_twice(
    routers: Routers, settings: Settings, engine: AsyncEngine
) -> None:
    tokens = await hire(routers.first[0], "americas", 150, [1] * 5)
    tokens |= await hire(routers.first[1], "enterprise", 100, [1] * 3)
    records = hand_offs(AMERICAS, country="US", company_size=SMALL_SIZE, accounts=1_000)
    records += hand_offs(ENTERPRISE, country="US", company_size=ENTERPRISE_SIZE, accounts=500)
    random.Random(5).shuffle(records)
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch_capacity(engine, stop))
    try:
        half = len(records) // 2
        await send(settings, records[:half])
        # A fourth router joins while the first half is routed, and leaves once all is: the
        # partitions move between routers twice, with batches in flight.
        joining = await asyncio.to_thread(routers.start, ROUTERS)
        try:
            await asyncio.gather(
                send(settings, records[half:]), send_back(routers.first, engine, tokens)
            )
        finally:
            routers.stop([joining])
        await until_true(
            engine,
            SETTLED_SQL,
            "every hand-off routed or queued behind full teams",
            hand_offs=len(records) + EARLIER,
            rejects=REJECTS,
        )
    finally:
        stop.set()
        overbooked_meanwhile = await watcher

    assert overbooked_meanwhile == []
    reps = await scalar_rows(engine, CAPACITY_SQL)
    assert [(rep.name, rep.holds) for rep in reps if rep.holds > rep.capacity] == []
    assert [(rep.name, rep.open_leads) for rep in reps] == [(rep.name, rep.holds) for rep in reps]
    assert sum(rep.holds for rep in reps) == 5 * 150 + 3 * 100  # the queue filled every seat
    statuses = Counter(
        dict(await scalar_rows(engine, "SELECT status, count(*) FROM router.leads GROUP BY 1"))
    )
    assert statuses == Counter(
        assigned=EARLIER + 5 * 150 + 3 * 100,
        returned=REJECTS,
        queued=len(records) - 5 * 150 - 3 * 100 - REJECTS,
    )
    twice = await scalar_rows(
        engine,
        "SELECT lead_id FROM router.handoff_log WHERE kind = 'assigned'"
        " GROUP BY lead_id HAVING count(*) > 1",
    )
    assert twice == []
    published = await scalar_rows(
        engine,
        "SELECT count(*), count(DISTINCT key) FROM router.outbox"
        " WHERE topic = 'lead.handoffs'"
        " AND convert_from(value, 'UTF8') LIKE '%leadflow.handoff.assigned%'",
    )
    assigned_ever = EARLIER + 5 * 150 + 3 * 100 + REJECTS
    assert published == [(assigned_ever, assigned_ever)]

"""Scale out: two scoring and two router processes on a broker of 12 partitions split the
partitions between them, and end where one scoring and one router end with the same traffic.

Each run has a broker and a database of its own (scoring stores its offsets in PostgreSQL,
so a second run on the same broker would read the first run's lifecycle events too). The
routing is made order-free on purpose: one rep per team and a company domain per lead, so
that a lead's rep follows from its territory alone, whichever instance routes it and in
whatever order; that is what lets the two runs be compared lead by lead.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from services.ingest.domain import Rejected, parse_interaction, record_interaction
from services.router.unit_of_work import CONSUMER_GROUP as ROUTER_GROUP
from services.scoring.unit_of_work import CONSUMER_GROUP as SCORING_GROUP
from shared.db import migrate
from shared.embedded import EmbeddedBroker, start_broker, stop_processes
from shared.kafka import admin_client, create_topics, new_producer, send_in_batches
from shared.settings import Settings
from shared.topics import INTERACTIONS, LIFECYCLE, Topic
from tests.conftest import TEST_ADMIN_KEY, TEST_API_KEYS
from tests.databases import own_database
from tests.processes import ServiceProcess, start_service
from tests.stacks import ADMIN

pytestmark = pytest.mark.integration

PARTITIONS = 12
LEADS = 600
CROSSING_EVERY = 4  # every 4th lead asks for a demo: the hand-off
TEAMS = ("enterprise", "dach", "emea", "americas")  # of lead-definitions.yaml
COUNTRIES = ("DE", "AT", "GB", "FR", "NL", "US", "BR")
SEED = 13
START = datetime.now(UTC) - timedelta(hours=6)  # recent: no decay below a threshold meanwhile
SETTLED_WITHIN = 45.0
DONE_WITHIN = 60.0
POLL_SECONDS = 0.2

# --- the traffic: many leads, a few thousand interactions -------------------------------------


def lead_history(lead: int, rng: random.Random) -> list[dict[str, Any]]:
    """A few page views, opens and clicks, sometimes a form by a manager (never the hand-off
    on their own: at most 45 behaviour and 30 fit points); every 4th lead asks for a demo."""
    email = f"lead{lead}@account{lead}.example.com"
    events: list[dict[str, Any]] = []
    for number in range(rng.randint(3, 7)):
        at = START + timedelta(minutes=lead % 300 + number)
        channel, kind = rng.choice((("web", "page_view"), ("email", "open"), ("email", "click")))
        events.append(
            {
                "channel": channel,
                "type": kind,
                "time": at.isoformat(),
                "contact": {"email": email},
                "properties": {"url": "/product"},
            }
        )
    profile = {"email": email, "company": f"Account {lead}", "country": rng.choice(COUNTRIES)}
    if rng.random() < 0.4:
        events.append(
            {
                "channel": "web",
                "type": "form_submit",
                "time": (START + timedelta(minutes=lead % 300 + 10)).isoformat(),
                "contact": profile
                | {"company_size": rng.choice((50, 400)), "job_title": "Marketing Manager"},
            }
        )
    if lead % CROSSING_EVERY == 0:
        events.append(
            {
                "channel": "web",
                "type": "demo_request",
                "campaign": "demo-request",
                "time": (START + timedelta(minutes=lead % 300 + 20)).isoformat(),
                "contact": profile | {"company_size": rng.choice((40, 250, 2_500))},
            }
        )
    return events


def traffic() -> list[tuple[str, bytes, bytes]]:
    """(topic, key, value) of every interaction, as ingest publishes them; fixed by SEED."""
    rng = random.Random(SEED)
    received_at = datetime.now(UTC)
    records = []
    for lead in range(LEADS):
        for number, raw in enumerate(lead_history(lead, rng)):
            parsed = parse_interaction(raw | {"id": f"scale-out-{lead}-{number}"})
            assert not isinstance(parsed, Rejected), parsed
            event = record_interaction(parsed, source="/test", received_at=received_at)
            records.append(
                (INTERACTIONS.name, event.subject.encode(), event.model_dump_json().encode())
            )
    return records


TRAFFIC = traffic()
HAND_OFFS = len(range(0, LEADS, CROSSING_EVERY))

# --- one run: N scoring and N router processes on a broker and a database of their own -------


@dataclass(frozen=True)
class FinalState:
    leads: dict[str, tuple[float, str | None, str | None]]  # email -> score, grade, stage
    routed: dict[str, tuple[str, str | None, str | None]]  # email -> status, rep, team
    per_rep: dict[str, int]  # rep -> leads assigned


@dataclass(frozen=True)
class Run:
    state: FinalState
    # service -> per instance, what its /metrics says it did: interactions consumed (scoring),
    # hand-offs assigned (router)
    work: dict[str, list[float]]
    # service -> per instance, the partitions it held last ("topic:partition"), from its log
    held: dict[str, list[set[str]]]


# Per service, the counter of its /metrics that says how much of the traffic an instance took.
WORK_COUNTERS = {
    "scoring": ("leadflow_scoring_records_total", {"kind": "interaction"}),
    "router": ("leadflow_router_handoffs_total", {"kind": "assigned"}),
}


def partitions_held(service: ServiceProcess) -> set[str]:
    """The partitions the instance was assigned last, as its log says."""
    held: set[str] = set()
    for line in service.log_path.read_text().splitlines():
        if '"partitions assigned"' in line:
            held = set(json.loads(line)["partitions"])
    return held


async def work_done(service: ServiceProcess, name: str) -> float:
    counter, labels = WORK_COUNTERS[name]
    async with httpx.AsyncClient(base_url=service.url, timeout=10) as client:
        exposed = (await client.get("/metrics")).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(exposed)
        for sample in family.samples
        if sample.name == counter and sample.labels == labels
    )


async def group_members(settings: Settings) -> dict[str, int]:
    """How many members each of the two groups has, once stable (DescribeGroups). Tansu
    answers the members without their assignments, so the partitions each holds are not
    seen from here."""
    members: dict[str, int] = {}
    async with admin_client(settings) as admin:
        for group in (SCORING_GROUP, ROUTER_GROUP):
            (described,) = await admin.describe_consumer_groups([group])
            _, _, state, _, _, described_members = described.groups[0]
            members[group] = len(described_members) if state == "Stable" else 0
    return members


async def until_settled(settings: Settings, instances: int) -> None:
    """Until both groups are stable with one member per instance."""
    deadline = asyncio.get_running_loop().time() + SETTLED_WITHIN
    members: dict[str, int] = {}
    while asyncio.get_running_loop().time() < deadline:
        members = await group_members(settings)
        if set(members.values()) == {instances}:
            return
        await asyncio.sleep(POLL_SECONDS)
    raise AssertionError(f"the groups never settled on {instances} members each: {members}")


DONE_SQL = """
SELECT (SELECT count(*) FROM scoring.interactions),
       (SELECT count(*) FROM scoring.outbox WHERE sent_at IS NULL),
       (SELECT count(*) FROM router.processed_events),
       (SELECT count(*) FROM router.leads WHERE rep_id IS NOT NULL),
       (SELECT count(*) FROM router.outbox WHERE sent_at IS NULL)
"""
EXPECTED_DONE = (len(TRAFFIC), 0, HAND_OFFS, HAND_OFFS, 0)
SCORED_SQL = "SELECT email, score, grade, stage FROM scoring.leads"
ROUTED_SQL = """
SELECT leads.profile->>'email' AS email, leads.status, reps.name AS rep, leads.team
FROM router.leads LEFT JOIN router.reps ON reps.id = leads.rep_id
"""


async def until_done_then_read(database_url: str) -> FinalState:
    """Until every interaction is stored, every hand-off routed and no outbox row is unsent;
    then the state both services end in."""
    engine = create_async_engine(database_url, pool_size=1)
    try:
        deadline = asyncio.get_running_loop().time() + DONE_WITHIN
        progress: tuple[Any, ...] = ()
        while progress != EXPECTED_DONE:
            assert asyncio.get_running_loop().time() < deadline, f"stuck at {progress}"
            await asyncio.sleep(POLL_SECONDS)
            async with engine.connect() as connection:
                progress = tuple((await connection.execute(text(DONE_SQL))).one())
        async with engine.connect() as connection:
            scored = (await connection.execute(text(SCORED_SQL))).all()
            routed = (await connection.execute(text(ROUTED_SQL))).all()
    finally:
        await engine.dispose()
    return FinalState(
        leads={row.email: (row.score, row.grade, row.stage) for row in scored},
        routed={row.email: (row.status, row.rep, row.team) for row in routed},
        per_rep=dict(Counter(row.rep for row in routed)),
    )


async def hire_one_rep_per_team(router: ServiceProcess) -> None:
    async with httpx.AsyncClient(base_url=router.url, headers=ADMIN, timeout=10) as client:
        for team in TEAMS:
            rep = {"name": f"{team} rep", "team": team, "capacity": 10_000}
            answer = await client.post("/v1/reps", json=rep)
            assert answer.status_code == 201, answer.text


async def run_with(instances: int, broker: EmbeddedBroker, database_url: str, logs: Path) -> Run:
    """`instances` scoring and router processes take the whole traffic; their final state."""
    settings = Settings(
        KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap_servers,
        DATABASE_URL=database_url,
        LEADFLOW_API_KEYS=TEST_API_KEYS,
        LEADFLOW_ADMIN_KEY=TEST_ADMIN_KEY,
        LEADFLOW_TOPIC_PARTITIONS=PARTITIONS,
    )
    await create_topics(settings)
    started: list[ServiceProcess] = []

    def start(name: str, number: int) -> ServiceProcess:
        service = start_service(name, settings, logs / f"{name}-{number}.log")
        started.append(service)
        return service

    try:
        services = await asyncio.gather(
            *(
                asyncio.to_thread(start, name, number)
                for name in ("scoring", "router")
                for number in range(instances)
            )
        )
        await hire_one_rep_per_team(services[-1])
        await until_settled(settings, instances)
        producer = new_producer(settings)
        await producer.start()
        try:
            await send_in_batches(producer, TRAFFIC)
        finally:
            await producer.stop()
        state = await until_done_then_read(database_url)
        await until_settled(settings, instances)  # no instance left the group meanwhile
        work = {
            "scoring": [await work_done(one, "scoring") for one in services[:instances]],
            "router": [await work_done(one, "router") for one in services[instances:]],
        }
        held = {
            "scoring": [partitions_held(one) for one in services[:instances]],
            "router": [partitions_held(one) for one in services[instances:]],
        }
        assert all(service.process.poll() is None for service in started)
    finally:
        stop_processes([(service.process, signal.SIGTERM) for service in started])
    for service in started:
        assert "Traceback" not in service.log_path.read_text(), service.log_path.name
    return Run(state, work, held)


@pytest.fixture(scope="module")
async def runs(
    broker: EmbeddedBroker, postgres_server: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[Run, Run]]:
    """Two of each on the module's broker and one of each on a broker of its own, side by
    side (most of a run is waiting: for processes to start, for a group to settle)."""
    own_broker = start_broker()
    try:
        async with (
            own_database(postgres_server, "leadflow_test_scale_two") as two_url,
            own_database(postgres_server, "leadflow_test_scale_one") as one_url,
        ):
            for url in (two_url, one_url):  # one at a time: Alembic's context is global
                await asyncio.to_thread(migrate, url)
            two, one = await asyncio.gather(
                run_with(2, broker, two_url, tmp_path_factory.mktemp("two-of-each")),
                run_with(1, own_broker, one_url, tmp_path_factory.mktemp("one-of-each")),
            )
            yield two, one
    finally:
        own_broker.stop()


async def test_two_instances_of_each_service_share_the_traffic(runs: tuple[Run, Run]) -> None:
    two_of_each, _ = runs
    scoring, router = two_of_each.work["scoring"], two_of_each.work["router"]
    assert all(scoring), f"an instance of scoring consumed nothing: {scoring}"
    assert all(router), f"an instance of the router assigned nothing: {router}"
    # each record and hand-off was taken by one instance: no rebalance handed any over twice
    assert sum(scoring) == len(TRAFFIC)
    assert sum(router) == HAND_OFFS


@pytest.mark.parametrize(("service", "topic"), [("scoring", INTERACTIONS), ("router", LIFECYCLE)])
async def test_the_partitions_are_split_between_the_instances(
    runs: tuple[Run, Run], service: str, topic: Topic
) -> None:
    held = runs[0].held[service]
    assert all(held), f"an instance of {service} holds no partition: {held}"
    first, second = held
    assert not first & second, f"two instances of {service} hold {first & second}"
    every = {f"{topic.name}:{partition}" for partition in range(PARTITIONS)}
    assert every <= first | second


async def test_two_instances_of_each_end_as_one_instance_of_each(runs: tuple[Run, Run]) -> None:
    two, one = (run.state for run in runs)
    assert len(one.leads) == LEADS
    assert two.leads.keys() == one.leads.keys()
    for email, (score, grade, stage) in one.leads.items():
        two_score, two_grade, two_stage = two.leads[email]
        # scored as of processing time: decay moves a score a little between the two runs
        assert two_score == pytest.approx(score, rel=1e-3), email
        assert (two_grade, two_stage) == (grade, stage), email
    assert len(one.routed) == HAND_OFFS
    assert two.routed == one.routed
    assert two.per_rep == one.per_rep
    assert set(one.per_rep) == {f"{team} rep" for team in TEAMS}

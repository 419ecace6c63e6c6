"""Benchmark of the scoring consumer against a raw consume + COPY reference, in one run.

What it measures, on this machine, in one run:

1. leadflow events/s: N interaction records are produced to `lead.interactions` on a fresh
   embedded Tansu broker (topics made by `shared.kafka.create_topics`, 6 partitions, so
   each partition starts with its log marker). Then the real scoring pipeline runs in
   this process: `StoredOffsetConsumer(..., CONSUMER_GROUP, ("lead.interactions",), ...)`
   handing every batch to `ScoringService.handle_interactions` (through a pass-through
   that only notes when the first batch arrived), with the `OutboxRelay` publishing
   concurrently, wired as `services/scoring/loops.py` and `bootstrap.py` wire them (the
   relay is woken after every commit). The clock starts before the consumer joins its
   group and stops at the commit after which `scoring.interactions` holds all N rows; the
   time until no outbox row is left unsent is reported too.
2. the reference: the same records consumed with a plain `AIOKafkaConsumer` (a new group,
   `getmany`, the consumer's fetch and group settings), each JSON-decoded into (event_id,
   lead key, time, channel, type, payload) and all of them written with one asyncpg
   `copy_records_to_table` into an unlogged table with a primary key on event_id. The
   payload is the record's JSON as it came (jsonb). Same clock: start to COPY done.
3. the ratio leadflow / reference (goals: >= 5,000 events/s; >= 0.5 from the start, >= 0.3
   once records flow).

Each side is reported twice: from the start (what the brief asks) and from the first fetch
on. Tansu holds a new group's first join for half the session timeout (3 s at the
consumer's 6 s), the same for both sides; at 50,000 events that is a large part of the
reference's time, so the second rate is the one that compares the work.

The records are realistic and fixed by a seed: about N/5 leads, each with an email; 5% of
them are "hot" and get a fifth of the events; web, email, tradeshow and social events of
every type ingest accepts (validated by `services.ingest.domain.parse_interaction`, wrapped
by `record_interaction`, keyed by identity like ingest does); about a third carry a
campaign of lead-definitions.yaml; 30% of leads have a company profile, sent on forms,
replies and tradeshow scans; 40% also carry a cookie id on web events (a second identity,
never a merge). Event times spread over the last 30 days, in arrival order.

PostgreSQL: the server of DATABASE_URL if set, else 127.0.0.1:5432 (trust auth) if it
answers, else the embedded PostgreSQL wheel started in a temporary directory. A fresh
database `leadflow_bench_<random>` is created and migrated there and dropped at the end.
Every process started here is stopped by its pid; only 127.0.0.1 is used. The reference
runs first, then leadflow. The whole run is bounded in time.

Everything shares the machine's cores, so absolute numbers move from run to run. Nothing
here asserts a timing.

Run from the repository root:

    .venv/bin/python bench/scoring.py [--events 50000] [--processes N | --shadow FILE]

`--shadow CANDIDATE.yaml` scores with a shadow run of that candidate going on (every batch
also replays its leads' histories against it, see README "Changing the definitions
safely"): run it beside a plain run to see what a shadow run costs.

`--processes N` runs leadflow as N scoring service processes (`leadflow serve scoring`, one
consumer group) instead of the pipeline in this process: a look at scaling out, reported
the same way (start = their launch) and not recorded for `make bench`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sys
import time
import uuid
from collections.abc import Awaitable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: find `bench`

from aiokafka import AIOKafkaConsumer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bench.common import (
    REPO_ROOT,
    CpuWatch,
    as_published,
    cpu_shares,
    fresh_database,
    load_average,
    postgres_server,
    rate,
    record,
    render,
    run_within,
    scratch,
    send_pipelined,
    start_logged_broker,
    versus,
)
from bench.e2e import exited_early, service_environment
from bench.servers import Server, launch, stop_all
from services.scoring.handlers import ScoringService
from services.scoring.shadow import ShadowRuns
from services.scoring.tables import consumer_offsets, outbox
from services.scoring.unit_of_work import CONSUMER_GROUP, unit_of_work
from shared.consumer import Batch, StoredOffsetConsumer
from shared.db import new_engine
from shared.definitions import load_definitions
from shared.embedded import free_port
from shared.events import LOG_STARTED_TYPE
from shared.kafka import create_topics, new_producer
from shared.outbox import OutboxRelay
from shared.settings import Settings
from shared.topics import INTERACTIONS

DEFINITIONS = REPO_ROOT / "lead-definitions.yaml"
PARTITIONS = 6
SEED = 20_260_101
LEADS_PER_EVENT = 1 / 5
HOT_LEADS = 0.05  # this share of the leads ...
HOT_EVENTS = 0.20  # ... gets this share of the events
PROFILED_LEADS = 0.30
COOKIE_LEADS = 0.40
CAMPAIGN_SHARE = 0.35
SPAN = timedelta(days=30)
PRODUCE_CHUNK = 5_000
FETCH_MAX_RECORDS = 2_000  # StoredOffsetConsumer's default
FETCH_MAX_PARTITION_BYTES = 4 * 1024 * 1024  # StoredOffsetConsumer's setting
# StoredOffsetConsumer's group timing. It matters: Tansu holds a new group's first join
# for half the session timeout (3 s at 6 s, 5 s at aiokafka's default of 10 s).
SESSION_TIMEOUT_MS = 6_000
HEARTBEAT_INTERVAL_MS = 1_000
COMMIT_POLL_SECONDS = 1.0
OUTBOX_POLL_SECONDS = 0.05
STOP_SECONDS = 30.0
PROCESS_POLL_SECONDS = 0.05
EVENTS_GOAL = 5_000
START_RATIO_GOAL = 0.5  # start to all stored: the group join is the same for both sides
RATIO_GOAL = 0.3  # once records flow
RUN_TAG = f"bench-{int(time.time())}"

# (channel, type, relative frequency): what a B2B funnel sees most and least often.
MIX: tuple[tuple[str, str, float], ...] = (
    ("web", "page_view", 30),
    ("web", "content_download", 8),
    ("web", "form_submit", 4),
    ("web", "demo_request", 0.5),
    ("email", "open", 18),
    ("email", "click", 8),
    ("email", "reply", 1.5),
    ("email", "unsubscribe", 0.5),
    ("email", "bounce", 0.5),
    ("tradeshow", "badge_scan", 2),
    ("tradeshow", "booth_visit", 1.5),
    ("tradeshow", "demo", 0.5),
    ("tradeshow", "meeting", 0.3),
    ("social", "follow", 2),
    ("social", "share", 2),
    ("social", "mention", 1),
    ("social", "comment", 1.5),
    ("social", "message", 0.5),
)
# Campaigns a channel's events may carry (those missing from the definitions are skipped).
CAMPAIGNS_BY_CHANNEL = {
    "web": ("q4-webinar", "linkedin-ads"),
    "email": ("newsletter", "q4-webinar"),
    "tradeshow": ("websummit-2026",),
    "social": ("linkedin-ads",),
}
PROFILE_TYPES = frozenset({"form_submit", "demo_request", "reply", "badge_scan", "meeting"})
URLS = ("/blog/lead-scoring", "/product", "/pricing", "/docs/start", "/customers", "/")
ASSETS = ("pricing.pdf", "whitepaper-2026.pdf", "case-study.pdf", "roi-calculator.xlsx")
NETWORKS = ("linkedin", "x", "youtube", "xing")
COMPANIES = ("Analytical Engines", "Northwind", "Globex", "Initech", "Umbrella", "Hooli")
TITLES = (
    "VP Engineering",
    "Head of Marketing",
    "Marketing Manager",
    "Software Engineer",
    "CTO",
    "Director of IT",
    "Student",
    "Team Lead",
)
INDUSTRIES = ("software", "saas", "financial services", "manufacturing", "retail", "education")
SIZES = (5, 40, 150, 500, 2_000, 12_000)
COUNTRIES = ("DE", "AT", "CH", "GB", "NL", "FR", "US", "ES", "IT", "BR")


# --- the records ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    email: str
    cookie: str | None
    profile: dict[str, Any] | None


def people(count: int, rng: random.Random) -> list[Person]:
    result = []
    for number in range(count):
        profile = (
            {
                "company": rng.choice(COMPANIES),
                "job_title": rng.choice(TITLES),
                "industry": rng.choice(INDUSTRIES),
                "company_size": rng.choice(SIZES),
                "country": rng.choice(COUNTRIES),
            }
            if rng.random() < PROFILED_LEADS
            else None
        )
        cookie = f"{RUN_TAG}-cookie-{number}" if rng.random() < COOKIE_LEADS else None
        result.append(Person(f"person{number}@example.com", cookie, profile))
    return result


def properties(channel: str, kind: str, rng: random.Random) -> dict[str, Any]:
    if channel == "web":
        if kind == "content_download":
            return {"asset": rng.choice(ASSETS)}
        if kind == "form_submit":
            return {"form": "contact", "url": "/contact"}
        return {"url": rng.choice(URLS)}
    if channel == "email":
        return {"url": rng.choice(URLS), "message_id": f"m{rng.randrange(1_000)}"}
    if channel == "social":
        return {"network": rng.choice(NETWORKS)}
    return {"show": "Web Summit 2026", "booth": "B12"}


@dataclass(frozen=True)
class Workload:
    records: list[tuple[bytes, bytes]]  # (value, key), in the order they are produced
    leads: int
    with_campaign: int
    with_profile: int


def workload(count: int, campaigns: set[str]) -> Workload:
    """`count` valid interaction envelopes, as ingest would publish them (fixed by SEED)."""
    rng = random.Random(SEED)
    persons = people(max(1, round(count * LEADS_PER_EVENT)), rng)
    hot = persons[: max(1, round(len(persons) * HOT_LEADS))]
    kinds = [(channel, kind) for channel, kind, _ in MIX]
    weights = [weight for _, _, weight in MIX]
    received_at = datetime.now(UTC)
    first = received_at - SPAN
    step = (SPAN - timedelta(hours=1)) / max(1, count)
    records = []
    with_campaign = with_profile = 0
    for number in range(count):
        person = rng.choice(hot) if rng.random() < HOT_EVENTS else rng.choice(persons)
        channel, kind = rng.choices(kinds, weights)[0]
        contact: dict[str, Any] = {"email": person.email}
        if person.cookie and channel == "web":
            contact["anonymous_id"] = person.cookie
        if person.profile and (kind in PROFILE_TYPES or channel == "tradeshow"):
            contact |= person.profile
            with_profile += 1
        raw: dict[str, Any] = {
            "id": f"{RUN_TAG}-{number}",
            "channel": channel,
            "type": kind,
            "time": (first + step * number).isoformat(),
            "contact": contact,
            "properties": properties(channel, kind, rng),
        }
        choices = [key for key in CAMPAIGNS_BY_CHANNEL[channel] if key in campaigns]
        if kind == "demo_request" and "demo-request" in campaigns:
            choices = ["demo-request"]
        if choices and (kind == "demo_request" or rng.random() < CAMPAIGN_SHARE):
            raw["campaign"] = rng.choice(choices)
            with_campaign += 1
        records.append(as_published(raw, received_at))
    return Workload(records, len(persons), with_campaign, with_profile)


async def produce(settings: Settings, records: list[tuple[bytes, bytes]]) -> float:
    """Send every record (acks=all), pipelined in chunks; answer the seconds it took."""
    producer = new_producer(settings, linger_ms=5)
    await producer.start()
    started = time.perf_counter()
    try:
        for first in range(0, len(records), PRODUCE_CHUNK):
            await send_pipelined(producer, records[first : first + PRODUCE_CHUNK])
    finally:
        await producer.stop()
    return time.perf_counter() - started


# --- measurements ---------------------------------------------------------------------------


@dataclass
class Measurement:
    events: int
    seconds: float  # start to all stored
    first_fetch: float  # start to the first records fetched (mostly the group join)
    batches: int  # non-empty fetches handled
    cpu: dict[str, float]
    drained: float | None = None  # start to no unsent outbox row (leadflow only)
    outbox_rows: int = 0
    stored_at_first_fetch: int = 0  # service processes: rows already stored when first seen

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds

    @property
    def processing_rate(self) -> float:
        """Events/s once records flow: from the first fetch to all stored."""
        return (self.events - self.stored_at_first_fetch) / (self.seconds - self.first_fetch)


async def scalar(engine: AsyncEngine, sql: str) -> int:
    async with engine.connect() as connection:
        value = await connection.scalar(text(sql))
    return int(value or 0)


async def reference(
    settings: Settings, database_url: str, count: int, broker_pid: int
) -> Measurement:
    """Plain consumer (new group) + one COPY of every record into an unlogged table."""
    engine = create_async_engine(database_url, pool_size=1)
    watch = CpuWatch({"bench process": os.getpid(), "broker": broker_pid})
    try:
        async with engine.connect() as connection:
            await connection.execute(
                text(
                    "CREATE UNLOGGED TABLE bench_reference (event_id text PRIMARY KEY, "
                    "lead_key text NOT NULL, event_time timestamptz NOT NULL, "
                    "channel text NOT NULL, type text NOT NULL, payload jsonb NOT NULL)"
                )
            )
            await connection.commit()
            raw = await connection.get_raw_connection()
            driver: Any = raw.driver_connection  # the asyncpg connection
            watch.start()
            started = time.perf_counter()
            consumer = AIOKafkaConsumer(
                INTERACTIONS.name,
                bootstrap_servers=settings.require_broker(),
                group_id=f"bench-reference-{uuid.uuid4().hex[:8]}",
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_partition_fetch_bytes=FETCH_MAX_PARTITION_BYTES,
                session_timeout_ms=SESSION_TIMEOUT_MS,
                heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
            )
            await consumer.start()
            rows: list[tuple[str, str, datetime, str, str, str]] = []
            first_records: float | None = None
            fetches = 0
            try:
                while len(rows) < count:
                    fetched = await consumer.getmany(timeout_ms=200, max_records=FETCH_MAX_RECORDS)
                    if fetched and first_records is None:
                        first_records = time.perf_counter() - started
                    fetches += bool(fetched)
                    for records in fetched.values():
                        for record in records:
                            envelope = json.loads(record.value)
                            if envelope["type"] == LOG_STARTED_TYPE:
                                continue
                            data = envelope["data"]
                            rows.append(
                                (
                                    envelope["id"],
                                    record.key.decode(),
                                    datetime.fromisoformat(envelope["time"]),
                                    data["channel"],
                                    data["type"],
                                    record.value.decode(),
                                )
                            )
            finally:
                await consumer.stop()
            await driver.copy_records_to_table(
                "bench_reference",
                records=rows,
                columns=["event_id", "lead_key", "event_time", "channel", "type", "payload"],
            )
            elapsed = time.perf_counter() - started
            cpu = watch.shares(elapsed)
        stored = await scalar(engine, "SELECT count(*) FROM bench_reference")
        if stored != count:
            raise RuntimeError(f"the reference stored {stored} rows, expected {count}")
    finally:
        await engine.dispose()
    return Measurement(count, elapsed, first_records or elapsed, fetches, cpu)


async def until_first(tasks: list[asyncio.Task[None]], waiting: Awaitable[float]) -> float:
    """Await `waiting` while the pipeline's loops run; a loop that ends first is an error."""
    watcher = asyncio.ensure_future(waiting)
    try:
        done, _ = await asyncio.wait([watcher, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task in done:
                task.result()  # raises what ended it
                raise RuntimeError(f"the {task.get_name()} loop stopped before the work was done")
        return watcher.result()
    finally:
        watcher.cancel()


class Pipeline:
    """The scoring consumer and the outbox relay, wired as the scoring service wires them."""

    def __init__(self, settings: Settings, database_url: str, count: int) -> None:
        self.count = count
        self.engine = new_engine(database_url)
        self.monitor = create_async_engine(database_url, pool_size=1)  # counts rows
        self.service = ScoringService(
            partial(unit_of_work, self.engine), load_definitions(DEFINITIONS)
        )
        self.producer = new_producer(settings, linger_ms=5)  # as services/scoring/bootstrap.py
        self.relay = OutboxRelay(self.engine, outbox, self.producer)
        self.service.on_events_queued = self.relay.wake  # as services/scoring/bootstrap.py
        self.consumer = StoredOffsetConsumer(
            settings,
            self.engine,
            consumer_offsets,
            CONSUMER_GROUP,
            (INTERACTIONS.name,),
            self._handle,
        )
        self.first_fetch: float | None = None
        self.batches = 0
        self.commits: list[float] = []  # when each batch was committed
        self._committing = asyncio.Event()

    async def _handle(self, batch: Batch) -> None:
        """`service.handle_interactions`, noting when the first batch arrived and when each
        was committed."""
        if self.first_fetch is None:
            self.first_fetch = time.perf_counter()
        self.batches += 1
        await self.service.handle_interactions(batch)
        self.commits.append(time.perf_counter())
        self._committing.set()

    async def publish(self, stopping: asyncio.Event) -> None:
        """services/scoring/loops.py: outbox_publisher."""
        await self.producer.start()
        try:
            await self.relay.run(stopping)
        finally:
            await self.producer.stop()

    async def all_stored(self) -> float:
        """The time of the commit after which every interaction was in the table."""
        while True:
            self._committing.clear()
            asked = time.perf_counter()
            if await scalar(self.monitor, "SELECT count(*) FROM scoring.interactions") >= (
                self.count
            ):
                return max((t for t in self.commits if t <= asked), default=asked)
            with suppress(TimeoutError):
                await asyncio.wait_for(self._committing.wait(), COMMIT_POLL_SECONDS)

    async def outbox_drained(self) -> float:
        """The first time no outbox row is left unsent (polled)."""
        unsent = "SELECT count(*) FROM scoring.outbox WHERE sent_at IS NULL"
        while True:
            if not await scalar(self.monitor, unsent):
                return time.perf_counter()
            await asyncio.sleep(OUTBOX_POLL_SECONDS)

    async def measure(self, broker_pid: int) -> Measurement:
        stopping = asyncio.Event()
        watch = CpuWatch({"bench process": os.getpid(), "broker": broker_pid})
        watch.start()
        started = time.perf_counter()
        tasks = [
            asyncio.create_task(self.consumer.run(stopping), name="interactions"),
            asyncio.create_task(self.publish(stopping), name="outbox"),
        ]
        try:
            stored_at = await until_first(tasks, self.all_stored())
            cpu = watch.shares(stored_at - started)
            drained_at = await until_first(tasks, self.outbox_drained())
        finally:
            stopping.set()
            _, pending = await asyncio.wait(tasks, timeout=STOP_SECONDS)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return Measurement(
            self.count,
            stored_at - started,
            (self.first_fetch or stored_at) - started,
            self.batches,
            cpu,
            drained=drained_at - started,
            outbox_rows=await scalar(self.monitor, "SELECT count(*) FROM scoring.outbox"),
        )

    async def close(self) -> None:
        await self.engine.dispose()
        await self.monitor.dispose()


async def leadflow(
    settings: Settings,
    database_url: str,
    count: int,
    broker_pid: int,
    shadow: str | None = None,
) -> Measurement:
    pipeline = Pipeline(settings, database_url, count)
    try:
        if shadow is not None:  # as `POST /v1/definitions/shadow` starts one
            runs = ShadowRuns(pipeline.service, DEFINITIONS)
            await runs.start(shadow, "bench")
        return await pipeline.measure(broker_pid)
    finally:
        await pipeline.close()


async def service_processes(
    settings: Settings, database_url: str, count: int, processes: int, broker_pid: int, logs: Path
) -> Measurement:
    """`processes` scoring services (`leadflow serve scoring`, one consumer group) take the
    records. The clock starts as they are launched; "first fetch" is the first time rows
    are seen stored (polled), and the rate once records flow counts only the rows after it."""
    environment = service_environment(settings.require_broker(), database_url, "bench-admin")
    monitor = create_async_engine(database_url, pool_size=1)
    servers: dict[str, Server] = {}
    try:
        for number in range(processes):
            port = free_port()
            servers[f"scoring-{number}"] = launch(
                f"scoring-{number}",
                [sys.executable, "-m", "leadflow", "serve", "scoring"],
                environment | {"LEADFLOW_SCORING_PORT": str(port)},
                port,
                logs,
            )
        pids = {name: server.process.pid for name, server in servers.items()}
        watch = CpuWatch(pids | {"broker": broker_pid})
        watch.start()
        started = time.perf_counter()
        first: tuple[float, int] | None = None
        stored = 0
        while stored < count:
            await asyncio.sleep(PROCESS_POLL_SECONDS)
            exited_early(servers)
            stored = await scalar(monitor, "SELECT count(*) FROM scoring.interactions")
            if stored and first is None:
                first = (time.perf_counter() - started, stored)
        elapsed = time.perf_counter() - started
        shares = watch.shares(elapsed)
        shares["scoring"] = sum(shares.pop(name, 0.0) for name in servers)
    finally:
        stop_all([server.process for server in servers.values()])
        await monitor.dispose()
    first_seen, stored_then = first or (elapsed, 0)
    return Measurement(count, elapsed, first_seen, 0, shares, stored_at_first_fetch=stored_then)


def processes_note(processes: int) -> str:
    return (
        f"leadflow ran as {processes} scoring service process(es) in one group, not in this "
        f"process: start = their launch (start-up and group join included); first fetch = "
        f"rows first seen stored (polled every {PROCESS_POLL_SECONDS:g} s); fetches not counted"
    )


# --- the report -----------------------------------------------------------------------------


def cpu(measurement: Measurement) -> str:
    return cpu_shares(measurement.cpu, ("bench process", "scoring", "broker", "other"))


def against_goal(value: float) -> str:
    verdict = "meets" if value >= EVENTS_GOAL else "below"
    return rate(value, "events/s") + f" ({verdict} goal of {EVENTS_GOAL:,})"


def report(ours: Measurement, theirs: Measurement) -> str:
    reference = "plain aiokafka getmany + JSON decode + one asyncpg COPY, unlogged table"
    rows = [
        [
            f"events/s ({ours.events:,} interactions, start to all stored)",
            against_goal(ours.events_per_second),
            rate(theirs.events_per_second, "events/s") + f": {reference}",
            versus(ours.events_per_second, theirs.events_per_second, START_RATIO_GOAL),
        ],
        [
            "events/s once records flow (first fetch to all stored)",
            against_goal(ours.processing_rate),
            rate(theirs.processing_rate, "events/s") + ": the same",
            versus(ours.processing_rate, theirs.processing_rate, RATIO_GOAL),
        ],
        [
            "  seconds: start to all stored",
            f"{ours.seconds:.2f}",
            f"{theirs.seconds:.2f} (to COPY done)",
            "",
        ],
        [
            "  seconds: start to first fetch (group join) / fetches",
            f"{ours.first_fetch:.2f} / {ours.batches} batches",
            f"{theirs.first_fetch:.2f} / {theirs.batches}",
            "",
        ],
        [
            "  seconds: start to outbox drained",
            f"{ours.drained:.2f} ({ours.outbox_rows:,} lifecycle events published)"
            if ours.drained is not None
            else "-",
            "- (no outbox)",
            "",
        ],
        [
            "  CPU % of a core (bench process / scoring processes / broker / other)",
            cpu(ours),
            cpu(theirs),
            "",
        ],
    ]
    header = [
        "metric",
        "leadflow",
        "reference (what it is)",
        f"ratio (goal >= {START_RATIO_GOAL} from the start, >= {RATIO_GOAL} once records flow)",
    ]
    return render(header, rows)


def record_results(ours: Measurement, theirs: Measurement) -> None:
    """The two rates, for `make bench`'s summary."""
    reference_is = "plain getmany + JSON decode + one asyncpg COPY, unlogged table"
    record(
        f"scoring: events/s, {ours.events:,} interactions, start to all stored",
        ours.events_per_second,
        theirs.events_per_second,
        unit="events/s",
        reference_is=reference_is,
        goal=START_RATIO_GOAL,
    )
    record(
        "scoring: events/s once records flow (first fetch to all stored)",
        ours.processing_rate,
        theirs.processing_rate,
        unit="events/s",
        reference_is=reference_is,
        goal=RATIO_GOAL,
    )


def preamble(args: argparse.Namespace, postgres: str, version: str, work: Workload) -> str:
    return "\n".join(
        [
            "leadflow scoring benchmark",
            f"machine: {os.cpu_count()} CPU cores, load average {load_average()} at start; "
            "this process, the broker and PostgreSQL share these cores, so absolute numbers "
            "are noisy: compare the ratio",
            f"python {platform.python_version()}; PostgreSQL {version} ({postgres}), a fresh "
            f"database; Tansu broker (memory storage), {PARTITIONS} partitions",
            f"workload: {args.events:,} interactions of {work.leads:,} leads (seed {SEED}); "
            f"{work.with_campaign:,} with a campaign, {work.with_profile:,} with a profile",
            "CPU % = share of one core from start to all stored (bench process = the consumer "
            "and relay, or the reference; other = the rest of the machine, mostly PostgreSQL)",
        ]
    )


# --- the run --------------------------------------------------------------------------------


async def run(
    args: argparse.Namespace,
    settings: Settings,
    server_url: str,
    postgres: str,
    broker_pid: int,
    logs: Path,
) -> str:
    async with fresh_database(server_url, "leadflow_bench") as database_url:
        version_engine = create_async_engine(database_url, pool_size=1)
        try:
            async with version_engine.connect() as connection:
                version = str(await connection.scalar(text("SHOW server_version")))
        finally:
            await version_engine.dispose()
        definitions = load_definitions(DEFINITIONS)
        work = workload(args.events, set(definitions.definitions.campaigns))
        await create_topics(settings)
        produced = await produce(settings, work.records)
        print(preamble(args, postgres, version, work), flush=True)
        print(f"produced in {produced:.1f} s; measuring the reference, then leadflow", flush=True)
        theirs = await reference(settings, database_url, args.events, broker_pid)
        if args.processes:
            ours = await service_processes(
                settings, database_url, args.events, args.processes, broker_pid, logs
            )
            return "\n" + report(ours, theirs) + "\n" + processes_note(args.processes)
        ours = await leadflow(settings, database_url, args.events, broker_pid, args.shadow_document)
        if args.shadow:
            return "\n" + report(ours, theirs) + f"\nwith a shadow run of {args.shadow} going on"
        record_results(ours, theirs)
        return "\n" + report(ours, theirs)


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark scoring against a raw reference.")
    parser.add_argument("--events", type=int, default=50_000, help="interactions to score")
    parser.add_argument(
        "--processes",
        type=int,
        default=0,
        help="run leadflow as this many scoring service processes in one group instead of "
        "in this process (a scale-out look; not recorded for make bench)",
    )
    parser.add_argument(
        "--shadow",
        type=Path,
        help="score with a shadow run of this candidate definitions file going on: what a "
        "shadow run costs (not recorded for make bench)",
    )
    args = parser.parse_args()
    if args.events < 1 or not 0 <= args.processes <= PARTITIONS:
        parser.error(f"--events must be >= 1, --processes 0 to {PARTITIONS}")
    args.shadow_document = args.shadow.read_text(encoding="utf-8") if args.shadow else None
    return args


def main() -> None:
    args = parse_arguments()
    with scratch() as (stack, logs):
        broker = start_logged_broker(stack, logs)
        server_url, postgres = postgres_server(stack, logs)
        settings = Settings(
            KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap_servers,
            LEADFLOW_TOPIC_PARTITIONS=PARTITIONS,
        )
        budget = 120 + args.events / 100
        measuring = run(args, settings, server_url, postgres, broker.process.pid, logs)
        print(run_within(measuring, budget))


if __name__ == "__main__":
    main()

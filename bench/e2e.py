"""End-to-end benchmark: how long a lead that crosses the hand-off takes to reach a rep.

What it measures, on this machine, in one run, with the whole stack as `leadflow up` runs
it (three processes, `python -m leadflow serve ingest|scoring|router`):

1. hand-off latency: interactions are POSTed to ingest (`POST /v1/events`, one event per
   request, never the batch route) at a fixed rate (default 1,000/s for 60 s) from a lean
   asyncio HTTP/1.1 client over several keep-alive connections, each request sent at its
   slot of the schedule. Most are background interactions of many leads (web page views,
   email opens and clicks: at most 30 points and no company, far from the hand-off);
   every 20th is a web `demo_request` with campaign `demo-request` and a contact with
   email, company, country and company size, which in the default lead definitions enters
   the hand-off stage (sql) directly. Each such lead crosses once. The wall-clock time
   (`time.time()`) just before a crossing's POST is written is kept by the lead's email.
   An independent consumer here (aiokafka, no group, every partition of `lead.lifecycle`
   and `lead.handoffs` assigned, from the beginning, `fetch_max_wait_ms` = 10) maps lead
   id -> email from the hand-off `leadflow.lead.stage_changed` events (`is_hand_off`,
   `profile.email`) and notes when each `leadflow.handoff.assigned` event arrives.
   Latency = that arrival minus the POST time of the lead's crossing. Reported: p50, p95,
   p99, max, how many were assigned, and how many crossings got no `assigned` event
   within a grace period (default 30 s) after the load ended. The goal: p99 <= 200 ms.
2. the floor: a raw Kafka round trip on the same broker in the same run: one record
   produced with acks=all (linger 0) to a scratch topic and read back by a consumer with
   the observer's fetch settings, 200 times in a row before the load, and about 200
   times spread over the load. The same round trip with aiokafka's default
   `fetch_max_wait_ms` (500, what the services' consumers use) is reported too: Tansu
   holds a fetch's answer for about that wait (half of it from 500 ms up) even when
   records are waiting, so it is what one consumer hop of the pipeline can cost.
3. where the time goes, per hand-off, between points stamped on its way: the POST and its
   202 (here), the start of scoring's batch transaction and of the relay transaction that
   published the stage change (`created_at` / `sent_at` of the row in `scoring.outbox`:
   PostgreSQL's now()), the stage change's CreateTime (set by scoring's Kafka client when
   it appended the record), the start of the router's transaction and of its relay's
   (`router.outbox`), the router's choice of rep (the assigned event's `time`), the
   assigned record's CreateTime, its arrival here. Every clock is this machine's. Also:
   scoring's batches during the load (from its /metrics: count, records, transaction
   time) and the router's transactions (hand-offs per transaction, time per hand-off).
4. the achieved request rate (a rate the machine cannot sustain is reported as such,
   with what was achieved; the schedule is never lowered), ingest errors (non-2xx or
   transport), POST -> 202 latency, CPU use of each process during the load.

Before the load the reps are created through the router API (three per team of
lead-definitions.yaml, capacity 10,000 each, so nothing queues) and the pipeline is warmed
up: demo requests are sent until one is assigned (the consumers' groups have joined).

Broker: the embedded Tansu (memory storage), topics by `shared.kafka.create_topics`
(6 partitions). PostgreSQL: the server of DATABASE_URL if set, else 127.0.0.1:5432 (trust
auth) if it answers, else the embedded PostgreSQL wheel in a temporary directory; a fresh
database `leadflow_bench_e2e_<random>` is created, migrated, and dropped at the end.
Every process started here is stopped by its pid; only 127.0.0.1 is used; the whole run is
bounded in time. The load generator, the three services, the broker and PostgreSQL share
the machine's cores, so absolute numbers move from run to run. Nothing here asserts.

Run from the repository root:

    .venv/bin/python bench/e2e.py [--rate 1000] [--seconds 60] [--connections 64]
        [--grace 30]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import random
import secrets
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: find `bench`

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import NewTopic
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bench.common import (
    REPO_ROOT,
    CpuWatch,
    accepted,
    clean_environment,
    cpu_shares,
    fresh_database,
    load_average,
    percentile,
    postgres_server,
    rate,
    render,
    run_within,
    scratch,
    start_logged_broker,
)
from bench.servers import (
    HttpConnection,
    Server,
    get,
    launch,
    request_head,
    stop_all,
    wait_until_answering,
)
from shared.embedded import LOCALHOST, free_port
from shared.kafka import admin_client, create_topics
from shared.settings import Settings
from shared.topics import HANDOFFS, LIFECYCLE

DEFINITIONS = REPO_ROOT / "lead-definitions.yaml"
SERVICES = ("ingest", "scoring", "router")
API_KEY = "bench"
TEAMS = ("enterprise", "dach", "emea", "americas")  # the teams of lead-definitions.yaml
REPS_PER_TEAM = 3
REP_CAPACITY = 10_000  # the most the router accepts: nothing should queue
CROSSING_EVERY = 20  # every 20th request makes a lead cross the hand-off
LEADS_PER_REQUEST = 1 / 5  # background leads: about five requests each
GOAL_P99_MS = 200.0
ROUND_TRIPS = 200
SLOW_ROUND_TRIPS = 40
OBSERVER_FETCH_WAIT_MS = 10
SERVICE_FETCH_WAIT_MS = 500  # aiokafka's default; StoredOffsetConsumer does not set it
SCRATCH_TOPIC = "bench.e2e.scratch"
STARTUP_SECONDS = 60.0
WARMUP_SECONDS = 90.0
WARMUP_EVERY_SECONDS = 0.5
REQUEST_TIMEOUT_SECONDS = 10.0
ROUND_TRIP_TIMEOUT_SECONDS = 10.0
LAG_TICK_SECONDS = 0.01
SUSTAINED_SHARE = 0.98  # achieved / offered below this: the machine did not keep up
SLIPPED_SECONDS = 0.1  # p99 of sends later than this after their slot: the load was bursty
SEED = 20_261_124
RUN_TAG = f"e2e-{int(time.time())}"

STAGE_CHANGED = "leadflow.lead.stage_changed"
ASSIGNED = "leadflow.handoff.assigned"
QUEUED = "leadflow.handoff.queued"
HAND_OFF_MARK = b'"is_hand_off":true'  # cheap filter before decoding a lifecycle record

BACKGROUND: tuple[tuple[str, str, float], ...] = (
    ("web", "page_view", 0.5),
    ("email", "open", 0.3),
    ("email", "click", 0.2),
)
URLS = ("/", "/blog/lead-scoring", "/product", "/customers", "/docs/start")  # no pricing page
COUNTRIES = ("DE", "AT", "CH", "GB", "FR", "NL", "US", "BR")  # dach, emea and americas
COMPANY_SIZES = (40, 250, 800, 2_500)  # >= 1,000: the enterprise team
TITLES = ("VP Engineering", "Head of Marketing", "Marketing Manager", "CTO")


# --- the workload -----------------------------------------------------------------------------


def email_of(lead: int) -> str:
    return f"lead{lead}@account{lead}.example.com"


def background_event(number: int, lead: int, rng: random.Random) -> dict[str, Any]:
    channel, kind = rng.choices(
        [(channel, kind) for channel, kind, _ in BACKGROUND], [w for _, _, w in BACKGROUND]
    )[0]
    properties: dict[str, Any] = {"url": rng.choice(URLS)}
    if channel == "email":
        properties["message_id"] = f"m{rng.randrange(100)}"
    return {
        "id": f"{RUN_TAG}-{number}",
        "channel": channel,
        "type": kind,
        "contact": {"email": email_of(lead)},
        "properties": properties,
    }


def crossing_event(label: str, email: str, rng: random.Random) -> dict[str, Any]:
    """A demo request: campaign demo-request enters the hand-off stage (sql) directly."""
    return {
        "id": f"{RUN_TAG}-{label}",
        "channel": "web",
        "type": "demo_request",
        "campaign": "demo-request",
        "contact": {
            "email": email,
            "company": f"Account {email.partition('@')[0]}",
            "country": rng.choice(COUNTRIES),
            "company_size": rng.choice(COMPANY_SIZES),
            "job_title": rng.choice(TITLES),
        },
        "properties": {"url": "/demo"},
    }


def encoded(event: dict[str, Any], port: int) -> bytes:
    """The whole request: head and JSON body."""
    body = json.dumps(event, separators=(",", ":")).encode()
    head = request_head("POST", port, "/v1/events", {"X-API-Key": API_KEY}, len(body))
    return head + body


@dataclass(frozen=True)
class Planned:
    request: bytes  # head and body
    crossing: str | None  # the lead's email when this request makes it cross the hand-off


def plan(total: int, port: int) -> tuple[list[Planned], int]:
    """`total` requests in the order they are sent (fixed by SEED); and how many leads."""
    rng = random.Random(SEED)
    leads = max(round(total * LEADS_PER_REQUEST), total // CROSSING_EVERY + 1)
    crossing_order = list(range(leads))
    rng.shuffle(crossing_order)
    crossers = iter(crossing_order)  # every lead crosses at most once
    planned = []
    for number in range(total):
        if number % CROSSING_EVERY == CROSSING_EVERY // 2:
            email = email_of(next(crossers))
            event = crossing_event(str(number), email, rng)
            planned.append(Planned(encoded(event, port), email))
        else:
            event = background_event(number, rng.randrange(leads), rng)
            planned.append(Planned(encoded(event, port), None))
    return planned, leads


def check_events_valid() -> None:
    """The benchmark must send what ingest accepts: each shape once through its parser."""
    rng = random.Random(SEED)
    samples = [background_event(n, n, rng) for n in range(20)]
    samples.append(crossing_event("check", email_of(0), rng))
    for event in samples:
        accepted(event)


# --- the load ---------------------------------------------------------------------------------


@dataclass
class Load:
    """Requests sent at their slot of a fixed-rate schedule over several connections."""

    planned: list[Planned]
    rate: float
    seconds: float
    port: int
    ok: int = 0
    errors: int = 0
    first_error: str | None = None
    unsent: int = 0  # slots not reached before the window closed
    posted_at: dict[str, float] = field(default_factory=dict)  # crossing email -> POST time
    accepted_at: dict[str, float] = field(default_factory=dict)  # crossing email -> 202 time
    answer_seconds: list[float] = field(default_factory=list)  # POST -> answer, all requests
    late_seconds: list[float] = field(default_factory=list)  # send time - scheduled time
    started: float = 0.0  # perf_counter
    finished: float = 0.0  # perf_counter of the last answer

    @property
    def elapsed(self) -> float:
        return max(self.finished - self.started, 1e-9)

    @property
    def achieved_rate(self) -> float:
        return self.ok / self.elapsed

    def _failed(self, error: str) -> None:
        self.errors += 1
        self.first_error = self.first_error or error

    async def _send(self, connection: HttpConnection, item: Planned) -> bool:
        """One request; answer whether the connection is still usable."""
        posted = time.time()
        if item.crossing is not None:
            self.posted_at[item.crossing] = posted
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_SECONDS):
                status, answer = await connection.request(item.request)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as error:
            self._failed(repr(error))
            return False
        answered = time.time()
        self.answer_seconds.append(answered - posted)
        if status == 202:
            self.ok += 1
            if item.crossing is not None:
                self.accepted_at[item.crossing] = answered
        else:
            self._failed(f"{status} {answer[:300]!r}")
        return True

    async def run(self, connections: list[HttpConnection]) -> None:
        slots = itertools.count()
        self.started = self.finished = time.perf_counter()
        closes = self.started + self.seconds

        async def worker(connection: HttpConnection | None) -> None:
            for slot in slots:
                if slot >= len(self.planned) or time.perf_counter() >= closes:
                    return
                due = self.started + slot / self.rate
                if due > time.perf_counter():
                    await asyncio.sleep(due - time.perf_counter())
                self.late_seconds.append(max(0.0, time.perf_counter() - due))
                if connection is None:
                    with suppress(OSError):
                        connection = await HttpConnection.open(self.port)
                if connection is None:
                    self._failed("could not connect")
                    continue
                if not await self._send(connection, self.planned[slot]):
                    await connection.close()
                    connection = None
                self.finished = time.perf_counter()

        try:
            await asyncio.gather(*(worker(connection) for connection in connections))
        finally:
            self.unsent = max(0, len(self.planned) - (self.ok + self.errors))


# --- the observer: lead.lifecycle and lead.handoffs, as a dashboard would read them -----------


@dataclass(frozen=True)
class Seen:
    event_id: str
    lead_id: str
    produced: float  # the record's CreateTime (epoch seconds), set by the producing client
    received: float  # when getmany handed it to this process (epoch seconds)
    decided: float | None = None  # the assigned event's `time`: when the router chose


class Observer:
    """Reads every partition of lead.lifecycle and lead.handoffs without a group."""

    def __init__(self, bootstrap: str) -> None:
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            enable_auto_commit=False,
            fetch_max_wait_ms=OBSERVER_FETCH_WAIT_MS,
            client_id="bench-e2e-observer",
        )
        self.hand_offs: dict[str, Seen] = {}  # email -> the hand-off stage change
        self.assigned: dict[str, Seen] = {}  # lead id -> the first assigned event
        self.queued = 0
        self.records = 0
        self.arrived = asyncio.Event()

    async def start(self) -> None:
        await self.consumer.start()
        await self.consumer.topics()  # metadata, so the partitions are known
        partitions = [
            TopicPartition(topic, partition)
            for topic in (LIFECYCLE.name, HANDOFFS.name)
            for partition in sorted(self.consumer.partitions_for_topic(topic) or ())
        ]
        self.consumer.assign(partitions)
        await self.consumer.seek_to_beginning(*partitions)

    async def stop(self) -> None:
        await self.consumer.stop()

    def _note(self, record: ConsumerRecord, received: float) -> None:
        value: bytes = record.value or b""
        produced = record.timestamp / 1000
        if record.topic == LIFECYCLE.name:
            if HAND_OFF_MARK not in value:
                return
            envelope = json.loads(value)
            data = envelope.get("data") or {}
            email = (data.get("profile") or {}).get("email")
            if envelope.get("type") == STAGE_CHANGED and data.get("is_hand_off") and email:
                seen = Seen(envelope["id"], data["lead_id"], produced, received)
                self.hand_offs.setdefault(email, seen)
            return
        envelope = json.loads(value)
        if envelope.get("type") == ASSIGNED:
            decided = datetime.fromisoformat(envelope["time"]).timestamp()
            lead_id = envelope["data"]["lead_id"]
            seen = Seen(envelope["id"], lead_id, produced, received, decided)
            self.assigned.setdefault(lead_id, seen)
        elif envelope.get("type") == QUEUED:
            self.queued += 1

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            fetched = await self.consumer.getmany(timeout_ms=100)
            received = time.time()
            for records in fetched.values():
                self.records += len(records)
                for record in records:
                    self._note(record, received)
            if fetched:
                self.arrived.set()

    def assigned_for(self, email: str) -> Seen | None:
        hand_off = self.hand_offs.get(email)
        return self.assigned.get(hand_off.lead_id) if hand_off else None


async def until(
    condition: Callable[[], bool], observer: Observer, task: asyncio.Task[None], seconds: float
) -> bool:
    """Wait until `condition` holds (checked as records arrive), at most `seconds`."""
    deadline = time.perf_counter() + seconds
    while not condition():
        if task.done():
            task.result()  # the observer only ends early by failing: raise its error
            raise RuntimeError("the observer stopped")
        left = deadline - time.perf_counter()
        if left <= 0:
            return False
        observer.arrived.clear()
        with suppress(TimeoutError):
            await asyncio.wait_for(observer.arrived.wait(), min(left, 0.1))
    return True


# --- the floor: a raw Kafka round trip --------------------------------------------------------


async def create_scratch_topic(settings: Settings) -> None:
    async with admin_client(settings) as admin:
        if SCRATCH_TOPIC not in set(await admin.list_topics()):
            await admin.create_topics([NewTopic(SCRATCH_TOPIC, 1, 1)])


async def round_trips(
    settings: Settings,
    count: int,
    fetch_wait_ms: int,
    *,
    gap: float = 0.0,
    stop: asyncio.Event | None = None,
) -> list[float]:
    """Produce one record (acks=all), read it back; `count` times, one after another."""
    bootstrap = settings.require_broker()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=fetch_wait_ms
    )
    await producer.start()
    await consumer.start()
    samples: list[float] = []
    try:
        scratch = TopicPartition(SCRATCH_TOPIC, 0)
        consumer.assign([scratch])
        await consumer.seek_to_end(scratch)
        for number in range(count):
            if stop is not None and stop.is_set():
                break
            marker = f"{uuid.uuid4()}-{number}".encode()
            started = time.perf_counter()
            await (await producer.send(SCRATCH_TOPIC, marker, partition=0))
            async with asyncio.timeout(ROUND_TRIP_TIMEOUT_SECONDS):
                while True:
                    fetched = await consumer.getmany(scratch, timeout_ms=1_000)
                    if any(r.value == marker for r in fetched.get(scratch, [])):
                        break
            samples.append(time.perf_counter() - started)
            if gap:
                if stop is None:
                    await asyncio.sleep(gap)
                else:
                    with suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), gap)
    finally:
        await consumer.stop()
        await producer.stop()
    return samples


async def loop_lag(stop: asyncio.Event) -> list[float]:
    """How late this process's event loop wakes a sleeper (it delays what we observe)."""
    lags = []
    while not stop.is_set():
        started = time.perf_counter()
        await asyncio.sleep(LAG_TICK_SECONDS)
        lags.append(time.perf_counter() - started - LAG_TICK_SECONDS)
    return lags


# --- what the services' own records say: outbox rows, scoring's batch metrics ---------------


@dataclass(frozen=True)
class OutboxTimes:
    created: float  # now() of the transaction that wrote the row (the consumer's batch)
    sent: float | None  # now() of the relay transaction that published it


async def outbox_times(database_url: str, schema: str, ids: list[str]) -> dict[str, OutboxTimes]:
    """When each event's outbox row was written and picked up by the relay (epoch seconds)."""
    engine = create_async_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text(
                    "SELECT event_id, extract(epoch FROM created_at)::float8, "
                    f"extract(epoch FROM sent_at)::float8 FROM {schema}.outbox "
                    "WHERE event_id = ANY(:ids)"
                ),
                {"ids": ids},
            )
            return {row[0]: OutboxTimes(row[1], row[2]) for row in rows}
    finally:
        await engine.dispose()


BATCH_METRIC = "leadflow_scoring_batch_seconds"
RECORDS_METRIC = 'leadflow_scoring_records_total{kind="interaction"}'


async def scoring_metrics(scoring: Server) -> dict[str, float]:
    """Scoring's batch histogram and record counter, from its /metrics page."""
    status, body = await get(scoring.port, "/metrics")
    if status != 200:
        return {}
    values = {}
    for line in body.decode().splitlines():
        name, _, value = line.rpartition(" ")
        if name.startswith((BATCH_METRIC, RECORDS_METRIC)):
            with suppress(ValueError):
                values[name] = float(value)
    return values


@dataclass(frozen=True)
class BatchStats:
    """Scoring's consumed batches during the load (differences of its /metrics)."""

    batches: float
    records: float
    seconds: float
    buckets: list[tuple[float, float]]  # (upper bound in seconds, batches at most that long)

    @classmethod
    def between(cls, before: dict[str, float], after: dict[str, float]) -> BatchStats:
        def delta(name: str) -> float:
            return after.get(name, 0.0) - before.get(name, 0.0)

        buckets = []
        for name in after:
            if name.startswith(f"{BATCH_METRIC}_bucket"):
                bound = name.partition('le="')[2].partition('"')[0]
                buckets.append((float(bound), delta(name)))
        return cls(
            delta(f"{BATCH_METRIC}_count"),
            delta(RECORDS_METRIC),
            delta(f"{BATCH_METRIC}_sum"),
            sorted(buckets),
        )

    def bound(self, quantile: float) -> float:
        """The smallest bucket bound that holds `quantile` of the batches."""
        return next(
            (b for b, count in self.buckets if count >= quantile * self.batches), float("inf")
        )

    def describe(self) -> str:
        if not self.batches:
            return "scoring: no batch during the load (no /metrics?)"
        return (
            f"scoring during the load: {self.batches:,.0f} batches of "
            f"{self.records / self.batches:,.0f} interactions on average; a batch's transaction "
            f"took {1000 * self.seconds / self.batches:,.0f} ms on average, <= "
            f"{1000 * self.bound(0.5):,.0f} ms for half of them, <= "
            f"{1000 * self.bound(0.99):,.0f} ms for 99% (histogram buckets); busy "
            f"{self.seconds:,.1f} s in all"
        )


# --- the services, as `leadflow up` starts them -----------------------------------------------


@contextmanager
def running_services(environment: dict[str, str], logs: Path) -> Iterator[dict[str, Server]]:
    """`python -m leadflow serve <name>` for each service, each on a free port."""
    ports: list[int] = []
    while len(ports) < len(SERVICES):
        port = free_port()
        if port not in ports:
            ports.append(port)
    services: dict[str, Server] = {}
    try:
        for name, port in zip(SERVICES, ports, strict=True):
            services[name] = launch(
                name,
                [sys.executable, "-m", "leadflow", "serve", name],
                environment | {f"LEADFLOW_{name.upper()}_PORT": str(port)},
                port,
                logs,
            )
        yield services
    finally:
        stop_all([service.process for service in services.values()])


async def create_reps(router: Server, admin_key: str) -> int:
    connection = await HttpConnection.open(router.port)
    created = 0
    try:
        for team in TEAMS:
            for number in range(REPS_PER_TEAM):
                body = json.dumps(
                    {"name": f"{team} rep {number}", "team": team, "capacity": REP_CAPACITY}
                ).encode()
                head = request_head(
                    "POST",
                    router.port,
                    "/v1/reps",
                    {"Authorization": f"Bearer {admin_key}"},
                    len(body),
                )
                async with asyncio.timeout(10):
                    status, answer = await connection.request(head, body)
                if status != 201:
                    raise RuntimeError(f"POST /v1/reps answered {status}: {answer[:300]!r}")
                created += 1
    finally:
        await connection.close()
    return created


async def warm_up(
    ingest: Server, observer: Observer, task: asyncio.Task[None]
) -> tuple[float, int]:
    """Demo requests until one is assigned: the consumers have joined their groups."""
    rng = random.Random(SEED + 1)
    connection = await HttpConnection.open(ingest.port)
    started = time.perf_counter()
    emails: list[str] = []
    try:
        while time.perf_counter() - started < WARMUP_SECONDS:
            email = f"warmup{len(emails)}@warmup.example.com"
            event = crossing_event(f"warmup-{len(emails)}", email, rng)
            status, answer = await connection.request(encoded(event, ingest.port))
            if status != 202:
                raise RuntimeError(f"warm-up POST /v1/events answered {status}: {answer!r}")
            emails.append(email)
            if await until(
                lambda: any(observer.assigned_for(e) for e in emails),
                observer,
                task,
                WARMUP_EVERY_SECONDS,
            ):
                return time.perf_counter() - started, len(emails)
    finally:
        await connection.close()
    raise RuntimeError(f"no warm-up hand-off was assigned within {WARMUP_SECONDS:.0f}s")


# --- one run ----------------------------------------------------------------------------------


@dataclass
class Results:
    load: Load
    leads: int
    floor: list[float]  # raw round trips before the load, seconds
    slow_floor: list[float]  # the same with aiokafka's default fetch wait
    loaded_floor: list[float]  # raw round trips during the load
    lags: list[float]
    cpu: dict[str, float]
    warm_up: tuple[float, int]
    observer: Observer
    grace: float
    drained_after: float | None  # seconds after the load until every crossing was assigned
    scoring_outbox: dict[str, OutboxTimes]  # hand-off stage_changed event id -> its row
    router_outbox: dict[str, OutboxTimes]  # assigned event id -> its row
    batches: BatchStats
    warnings: dict[str, list[str]] = field(default_factory=dict)  # service -> log lines


async def measure(
    args: argparse.Namespace,
    settings: Settings,
    services: dict[str, Server],
    admin_key: str,
    broker_pid: int,
) -> Results:
    database_url = settings.require_database()
    observer = Observer(settings.require_broker())
    await observer.start()
    stopping = asyncio.Event()
    observing = asyncio.create_task(observer.run(stopping), name="observer")
    try:
        await create_scratch_topic(settings)
        floor = await round_trips(settings, ROUND_TRIPS, OBSERVER_FETCH_WAIT_MS)
        slow_floor = await round_trips(settings, SLOW_ROUND_TRIPS, SERVICE_FETCH_WAIT_MS)
        await create_reps(services["router"], admin_key)
        warmed = await warm_up(services["ingest"], observer, observing)
        ingest = services["ingest"]
        planned, leads = plan(round(args.rate * args.seconds), ingest.port)
        load = Load(planned, args.rate, args.seconds, ingest.port)
        connections = [await HttpConnection.open(ingest.port) for _ in range(args.connections)]
        pids = {name: service.process.pid for name, service in services.items()}
        watch = CpuWatch(pids | {"broker": broker_pid, "bench": os.getpid()})
        load_over = asyncio.Event()
        lagging = asyncio.create_task(loop_lag(load_over))
        sampling = asyncio.create_task(
            round_trips(
                settings,
                10 * ROUND_TRIPS,
                OBSERVER_FETCH_WAIT_MS,
                gap=args.seconds / ROUND_TRIPS,
                stop=load_over,
            )
        )
        metrics_before = await scoring_metrics(services["scoring"])
        watch.start()
        try:
            await load.run(connections)
        finally:
            load_over.set()
            await asyncio.gather(*(connection.close() for connection in connections))
        cpu = watch.shares(load.elapsed)
        batches = BatchStats.between(metrics_before, await scoring_metrics(services["scoring"]))
        lags = await lagging
        loaded_floor = await sampling
        ended = time.perf_counter()
        crossings = list(load.accepted_at)
        drained = await until(
            lambda: all(observer.assigned_for(email) for email in crossings),
            observer,
            observing,
            args.grace,
        )
        drained_after = time.perf_counter() - ended if drained else None
        scoring_outbox = await outbox_times(
            database_url, "scoring", [seen.event_id for seen in observer.hand_offs.values()]
        )
        router_outbox = await outbox_times(
            database_url, "router", [seen.event_id for seen in observer.assigned.values()]
        )
    finally:
        stopping.set()
        await asyncio.gather(observing, return_exceptions=True)
        await observer.stop()
    return Results(
        load,
        leads,
        floor,
        slow_floor,
        loaded_floor,
        lags,
        cpu,
        warmed,
        observer,
        args.grace,
        drained_after,
        scoring_outbox,
        router_outbox,
        batches,
    )


async def run(
    args: argparse.Namespace, broker_bootstrap: str, broker_pid: int, server_url: str, logs: Path
) -> Results:
    async with fresh_database(server_url, "leadflow_bench_e2e") as database_url:
        settings = Settings(KAFKA_BOOTSTRAP_SERVERS=broker_bootstrap, DATABASE_URL=database_url)
        await create_topics(settings)
        admin_key = f"admin-{secrets.token_urlsafe(18)}"
        environment = clean_environment() | {
            "KAFKA_BOOTSTRAP_SERVERS": broker_bootstrap,
            "DATABASE_URL": database_url,
            "LEADFLOW_API_KEYS": json.dumps({API_KEY: ["*"]}),
            "LEADFLOW_ADMIN_KEY": admin_key,
            "LEADFLOW_LOG_LEVEL": "WARNING",
            "LEADFLOW_DEFINITIONS": str(DEFINITIONS),
            "LEADFLOW_HTTP_HOST": LOCALHOST,
        }
        with running_services(environment, logs) as services:
            await asyncio.gather(
                *(wait_until_answering(s, "/readyz", STARTUP_SECONDS) for s in services.values())
            )
            print("services ready; measuring", flush=True)
            results = await measure(args, settings, services, admin_key, broker_pid)
            for service in services.values():
                if service.process.poll() is not None:
                    raise RuntimeError(
                        f"{service.name} exited with {service.process.returncode} during the "
                        f"run:\n{service.tail()}"
                    )
                results.warnings[service.name] = service.log_lines()
        return results


# --- the report -------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{1000 * seconds:,.1f}"


def spread(values: list[float]) -> str:
    """p50 / p95 / p99 / max in ms."""
    return " / ".join(ms(percentile(values, q)) for q in (0.50, 0.95, 0.99, 1.0))


def hand_off_latencies(results: Results) -> list[float]:
    load, observer = results.load, results.observer
    latencies = []
    for email in load.accepted_at:
        assigned = observer.assigned_for(email)
        if assigned is not None:
            latencies.append(assigned.received - load.posted_at[email])
    return latencies


SEGMENTS = (
    "POST -> 202 from ingest (acks=all)",
    "202 -> scoring's batch began (its fetch, the batches before)",
    "scoring's batch began -> its relay picked the event (the batch, commit, relay wake)",
    "scoring's relay picked -> stage_changed produced",
    "stage_changed produced -> router's batch began (its fetch, the batches before)",
    "router's batch began -> the rep chosen (hand-offs before it in the batch)",
    "rep chosen -> router's relay picked the event (rest of the batch, commit, relay wake)",
    "router's relay picked -> assigned produced",
    "assigned produced -> received here (observer fetch)",
    "total: POST -> assigned received here",
    "(observed here: POST -> stage_changed received)",
    "(observed here: stage_changed received -> assigned received)",
)


def segments(results: Results) -> list[tuple[str, list[float]]]:
    """Per assigned hand-off: the time between consecutive points on its way.

    The points are stamped by different clocks of this one machine: this process
    (`time.time()`), the producing services' Kafka clients (CreateTime, in ms), PostgreSQL
    (`now()`, the start of the transaction) and the router (the event's `time`).
    """
    load, observer = results.load, results.observer
    parts: dict[str, list[float]] = {name: [] for name in SEGMENTS}
    for email in load.accepted_at:
        hand_off = observer.hand_offs.get(email)
        assigned = observer.assigned_for(email)
        if hand_off is None or assigned is None or assigned.decided is None:
            continue
        scored = results.scoring_outbox.get(hand_off.event_id)
        routed = results.router_outbox.get(assigned.event_id)
        if scored is None or routed is None or scored.sent is None or routed.sent is None:
            continue
        points = (
            load.posted_at[email],
            load.accepted_at[email],
            scored.created,
            scored.sent,
            hand_off.produced,
            routed.created,
            assigned.decided,
            routed.sent,
            assigned.produced,
            assigned.received,
        )
        values = [later - earlier for earlier, later in itertools.pairwise(points)]
        values += [
            assigned.received - points[0],
            hand_off.received - points[0],
            assigned.received - hand_off.received,
        ]
        for name, value in zip(SEGMENTS, values, strict=True):
            parts[name].append(value)
    return list(parts.items())


def router_batches(results: Results) -> str:
    """How the router's transactions held the hand-offs: per-hand-off time inside one."""
    by_transaction: dict[float, list[float]] = {}
    for seen in results.observer.assigned.values():
        routed = results.router_outbox.get(seen.event_id)
        if routed is not None and seen.decided is not None:
            by_transaction.setdefault(routed.created, []).append(seen.decided)
    if not by_transaction:
        return "router: no assigned event found in its outbox"
    gaps = []
    for decided in by_transaction.values():
        ordered = sorted(decided)
        gaps += [later - earlier for earlier, later in itertools.pairwise(ordered)]
    sizes = [len(decided) for decided in by_transaction.values()]
    return (
        f"router: the assigned events came from {len(sizes):,} transactions, "
        f"{sum(sizes) / len(sizes):.1f} hand-offs each on average (max {max(sizes)}); "
        f"between two rep choices in one transaction: p50 {ms(percentile(gaps, 0.5))} ms, "
        f"p95 {ms(percentile(gaps, 0.95))} ms"
    )


def main_table(args: argparse.Namespace, results: Results) -> str:
    load = results.load
    latencies = hand_off_latencies(results)
    crossings = len(load.accepted_at)
    missing = crossings - len(latencies)
    p99 = 1000 * percentile(latencies, 0.99)
    verdict = "meets goal" if p99 <= GOAL_P99_MS else "misses goal"
    floor = results.floor
    sustained = load.achieved_rate >= SUSTAINED_SHARE * args.rate
    rows = [
        [
            "hand-off latency p99 (POST of the crossing -> assigned received)",
            f"{p99:,.1f} ms",
            f"goal <= {GOAL_P99_MS:.0f} ms",
            f"{p99 / GOAL_P99_MS:.2f} ({verdict})",
        ],
        [
            "  p50 / p95 / p99 / max (ms)",
            spread(latencies),
            f"raw Kafka round trip: {spread(floor)}",
            " / ".join(
                f"x{percentile(latencies, q) / percentile(floor, q):,.0f}"
                for q in (0.50, 0.95, 0.99, 1.0)
            ),
        ],
        [
            "  hand-offs assigned / crossings accepted (202)",
            f"{len(latencies):,} / {crossings:,}",
            "",
            "",
        ],
        [
            f"  crossings not assigned within {results.grace:g} s after the load",
            f"{missing:,}",
            "0",
            "",
        ],
        [
            f"raw Kafka round trip, idle ({len(floor)} samples; acks=all, linger 0, "
            f"fetch_max_wait_ms={OBSERVER_FETCH_WAIT_MS})",
            "",
            spread(floor),
            "",
        ],
        [
            f"  the same during the load ({len(results.loaded_floor)} samples)",
            "",
            spread(results.loaded_floor),
            "",
        ],
        [
            f"  the same with fetch_max_wait_ms={SERVICE_FETCH_WAIT_MS} (aiokafka default, "
            f"the services' consumers; {len(results.slow_floor)} samples)",
            "",
            spread(results.slow_floor),
            "",
        ],
        [
            "request rate to ingest (single POST /v1/events)",
            rate(load.achieved_rate, "req/s") + ("" if sustained else " (NOT sustained)"),
            rate(args.rate, "req/s") + " offered",
            f"{load.achieved_rate / args.rate:.2f}",
        ],
        [
            "ingest errors (non-2xx or transport) / requests not sent in the window",
            f"{load.errors:,} / {load.unsent:,}",
            "0 / 0",
            "",
        ],
        [
            "  POST -> answer p50 / p95 / p99 / max (ms), all requests",
            spread(load.answer_seconds),
            "",
            "",
        ],
        [
            "  send lateness vs schedule p50 / p95 / p99 / max (ms)",
            spread(load.late_seconds),
            "",
            "",
        ],
    ]
    header = ["metric", "leadflow", "reference", "ratio"]
    return render(header, rows)


def breakdown_table(results: Results) -> str:
    rows = [
        [name, *(ms(percentile(values, q)) for q in (0.50, 0.95, 0.99, 1.0))]
        for name, values in segments(results)
    ]
    header = ["where the time goes, per assigned hand-off (ms)", "p50", "p95", "p99", "max"]
    return render(header, rows)


def cpu_line(results: Results) -> str:
    names = ("ingest", "scoring", "router", "broker", "bench", "other")
    shares = cpu_shares(results.cpu, names)
    total = sum(results.cpu.values())
    return (
        f"CPU % of a core during the load ({' / '.join(names)}): {shares}; "
        f"{total:.0f}% of the machine's {100 * (os.cpu_count() or 1)}% "
        "(other: mostly PostgreSQL)"
    )


def notes(args: argparse.Namespace, results: Results) -> list[str]:
    load, observer = results.load, results.observer
    lines = [
        cpu_line(results),
        results.batches.describe(),
        router_batches(results),
        f"this process's event loop woke sleepers late by p99 {ms(percentile(results.lags, 0.99))}"
        f" ms, max {ms(percentile(results.lags, 1.0))} ms during the load (that delay is "
        "inside every latency measured here)",
        f"warm-up: the first demo request was assigned after {results.warm_up[0]:.1f} s "
        f"({results.warm_up[1]} sent); not counted",
        f"workload: {len(load.planned):,} requests planned over {results.leads:,} leads; every "
        f"{CROSSING_EVERY}th a demo request ({len(load.posted_at):,} sent); "
        f"{observer.records:,} records observed on lead.lifecycle + lead.handoffs",
    ]
    if results.drained_after is not None:
        lines.append(
            f"every accepted crossing was assigned {results.drained_after:.1f} s after the load"
        )
    if load.achieved_rate < SUSTAINED_SHARE * args.rate:
        lines.append(
            f"NOTE: this machine did not sustain {args.rate:,.0f} req/s: it achieved "
            f"{load.achieved_rate:,.0f} req/s ({load.ok:,} accepted in {load.elapsed:.1f} s); "
            "the schedule was not lowered"
        )
    late = percentile(load.late_seconds, 0.99)
    if late > SLIPPED_SECONDS:
        lines.append(
            f"NOTE: the schedule slipped: 1% of the requests were sent {ms(late)} ms or more "
            f"after their slot (all {args.connections} connections were waiting on ingest), "
            "so the load came in bursts"
        )
    if load.errors:
        lines.append(f"NOTE: {load.errors:,} ingest errors, first: {load.first_error}")
    if observer.queued:
        lines.append(f"NOTE: {observer.queued:,} hand-offs were queued (no rep could take them)")
    for name, lines_logged in results.warnings.items():
        if lines_logged:
            lines.append(
                f"NOTE: {name} logged {len(lines_logged):,} lines at WARNING or above; "
                f"first: {lines_logged[0][:300]}"
            )
    return lines


def preamble(args: argparse.Namespace, postgres: str) -> str:
    return "\n".join(
        [
            "leadflow end-to-end benchmark: POST of a crossing interaction -> assigned on "
            "lead.handoffs",
            f"machine: {os.cpu_count()} CPU cores, load average {load_average()} at start; the "
            "load generator, three services, broker and PostgreSQL share these cores",
            f"python {platform.python_version()}; PostgreSQL: {postgres}, a fresh database; "
            "Tansu broker (memory storage), 6 partitions per topic",
            f"load: {args.rate:,.0f} req/s for {args.seconds:g} s over {args.connections} "
            f"keep-alive connections, every {CROSSING_EVERY}th request a demo request; "
            f"{len(TEAMS) * REPS_PER_TEAM} reps (capacity {REP_CAPACITY:,} each)",
        ]
    )


def report(args: argparse.Namespace, results: Results) -> str:
    return "\n".join(
        ["", main_table(args, results), "", breakdown_table(results), "", *notes(args, results)]
    )


# --- the command ------------------------------------------------------------------------------


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Hand-off latency of the whole stack.")
    parser.add_argument("--rate", type=float, default=1_000.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the load runs")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive connections")
    parser.add_argument(
        "--grace", type=float, default=30.0, help="seconds to wait for hand-offs after the load"
    )
    args = parser.parse_args()
    if args.rate <= 0 or args.seconds <= 0 or args.connections < 1 or args.grace < 0:
        parser.error("--rate and --seconds must be > 0, --connections >= 1, --grace >= 0")
    if args.rate * args.seconds < CROSSING_EVERY:
        parser.error(f"--rate x --seconds must be at least {CROSSING_EVERY} requests")
    return args


def main() -> None:
    args = parse_arguments()
    check_events_valid()
    with scratch() as (stack, logs):
        broker = start_logged_broker(stack, logs)
        server_url, postgres = postgres_server(stack, logs)
        print(preamble(args, postgres), flush=True)
        budget = 3 * STARTUP_SECONDS + WARMUP_SECONDS + 2 * args.seconds + args.grace + 120
        results = run_within(
            run(args, broker.bootstrap_servers, broker.process.pid, server_url, logs), budget
        )
        print(report(args, results))


if __name__ == "__main__":
    main()

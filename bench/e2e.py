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
   within a grace period (default 30 s) after the load ended. The goal: p99 <= 200 ms at
   1,000 req/s, <= 100 ms at 300 req/s.
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
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: find `bench`

from bench.common import (
    REPO_ROOT,
    CpuWatch,
    accepted,
    clean_environment,
    fresh_database,
    load_average,
    postgres_server,
    run_within,
    scratch,
    start_logged_broker,
)
from bench.e2e_observe import (
    OBSERVER_FETCH_WAIT_MS,
    SERVICE_FETCH_WAIT_MS,
    BatchStats,
    Observer,
    OutboxTimes,
    create_scratch_topic,
    loop_lag,
    outbox_times,
    round_trips,
    scoring_metrics,
    until,
)
from bench.e2e_report import record_results, report
from bench.receiver import running_receiver
from bench.servers import (
    HttpConnection,
    Server,
    get,
    launch,
    request_head,
    request_once,
    stop_all,
    wait_until_answering,
)
from shared.embedded import LOCALHOST, free_port
from shared.kafka import create_topics
from shared.settings import Settings

DEFINITIONS = REPO_ROOT / "lead-definitions.yaml"
SERVICES = ("ingest", "scoring", "router")
API_KEY = "bench"
TEAMS = ("enterprise", "dach", "emea", "americas")  # the teams of lead-definitions.yaml
REPS_PER_TEAM = 3
REP_CAPACITY = 10_000  # the most the router accepts: nothing should queue
NOTIFIED_TYPES = ["leadflow.handoff.assigned", "leadflow.handoff.accepted"]

# how long the run may wait for what, and how many raw round trips make the floor
STARTUP_SECONDS = 60.0
WARMUP_SECONDS = 90.0
WARMUP_EVERY_SECONDS = 0.5
REQUEST_TIMEOUT_SECONDS = 10.0
ROUND_TRIPS = 200
SLOW_ROUND_TRIPS = 40

# the workload: fixed by SEED, tagged by RUN_TAG
SEED = 20_261_124
RUN_TAG = f"e2e-{int(time.time())}"
CROSSING_EVERY = 20  # every 20th request makes a lead cross the hand-off
LEADS_PER_REQUEST = 1 / 5  # background leads: about five requests each
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


PROGRESS_EVERY_SECONDS = 10.0


async def show_progress(load: Load) -> None:
    """A line every few seconds while the load runs, so that a long run shows it is alive."""
    while True:
        await asyncio.sleep(PROGRESS_EVERY_SECONDS)
        print(
            f"  load: {time.perf_counter() - load.started:.0f} of {load.seconds:g} s, "
            f"{load.ok:,} accepted, {load.errors:,} errors",
            flush=True,
        )


# --- the services, as `leadflow up` starts them -----------------------------------------------


def service_environment(broker_bootstrap: str, database_url: str, admin_key: str) -> dict[str, str]:
    """What every service process of a benchmark runs with: this broker and database, the
    benchmark's API key, quiet logs."""
    return clean_environment() | {
        "KAFKA_BOOTSTRAP_SERVERS": broker_bootstrap,
        "DATABASE_URL": database_url,
        "LEADFLOW_API_KEYS": json.dumps({API_KEY: ["*"]}),
        "LEADFLOW_ADMIN_KEY": admin_key,
        "LEADFLOW_LOG_LEVEL": "WARNING",
        "LEADFLOW_DEFINITIONS": str(DEFINITIONS),
        "LEADFLOW_HTTP_HOST": LOCALHOST,
    }


@contextmanager
def running_services(
    environment: dict[str, str], logs: Path, names: tuple[str, ...] = SERVICES
) -> Iterator[dict[str, Server]]:
    """`python -m leadflow serve <name>` for each of `names`, each on a free port."""
    ports: list[int] = []
    while len(ports) < len(names):
        port = free_port()
        if port not in ports:
            ports.append(port)
    services: dict[str, Server] = {}
    try:
        for name, port in zip(names, ports, strict=True):
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


async def all_ready(services: dict[str, Server]) -> None:
    await asyncio.gather(
        *(wait_until_answering(s, "/readyz", STARTUP_SECONDS) for s in services.values())
    )


def exited_early(services: dict[str, Server]) -> None:
    """Fail if a service died during the run, with the end of its log."""
    for service in services.values():
        if service.process.poll() is not None:
            raise RuntimeError(
                f"{service.name} exited with {service.process.returncode} during "
                f"the run:\n{service.tail()}"
            )


@contextmanager
def mailbox_process(environment: dict[str, str], logs: Path) -> Iterator[tuple[int, Server]]:
    """`leadflow mailbox` in a process of its own: its work is not this process's lateness."""
    smtp_port, http_port = free_port(), free_port()
    command = [sys.executable, "-m", "leadflow", "mailbox", f"--smtp-port={smtp_port}"]
    mailbox = launch(
        "mailbox", [*command, f"--http-port={http_port}"], environment, http_port, logs
    )
    try:
        yield smtp_port, mailbox
    finally:
        stop_all([mailbox.process])


async def mailbox_total(mailbox: Server) -> int:
    status, body = await get(mailbox.port, "/messages.json?limit=0")
    if status != 200:
        raise RuntimeError(f"the mailbox answered {status}")
    total: int = json.loads(body)["total"]
    return total


async def admin_post(router: Server, admin_key: str, path: str, fields: dict[str, Any]) -> None:
    body = json.dumps(fields).encode()
    head = request_head(
        "POST", router.port, path, {"Authorization": f"Bearer {admin_key}"}, len(body)
    )
    status, answer = await request_once(router.port, head, body, within=10)
    if status != 201:
        raise RuntimeError(f"POST {path} answered {status}: {answer[:300]!r}")


async def create_reps(router: Server, admin_key: str, *, with_email: bool) -> int:
    created = 0
    for team in TEAMS:
        for number in range(REPS_PER_TEAM):
            rep = {"name": f"{team} rep {number}", "team": team, "capacity": REP_CAPACITY}
            if with_email:
                rep["email"] = f"{team}.rep{number}@example.com"
            await admin_post(router, admin_key, "/v1/reps", rep)
            created += 1
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
    notices: tuple[int, int] | None = None  # emails and webhook deliveries received


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
        await create_reps(services["router"], admin_key, with_email=args.notify)
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
        progress = asyncio.create_task(show_progress(load))
        try:
            await load.run(connections)
        finally:
            load_over.set()
            progress.cancel()
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
        environment = service_environment(broker_bootstrap, database_url, admin_key)
        async with AsyncExitStack() as outbound:
            if args.notify:
                smtp_port, mailbox = outbound.enter_context(mailbox_process(environment, logs))
                await wait_until_answering(mailbox, "/healthz", STARTUP_SECONDS)
                receiver = await outbound.enter_async_context(running_receiver())
                environment["LEADFLOW_SMTP_URL"] = f"smtp://{LOCALHOST}:{smtp_port}"
            with running_services(environment, logs) as services:
                await all_ready(services)
                if args.notify:
                    subscription = {"url": receiver.url, "event_types": NOTIFIED_TYPES}
                    await admin_post(
                        services["router"], admin_key, "/v1/subscriptions", subscription
                    )
                print("services ready; measuring", flush=True)
                results = await measure(args, settings, services, admin_key, broker_pid)
                if args.notify:
                    results.notices = (await mailbox_total(mailbox), receiver.received)
                exited_early(services)
                for service in services.values():
                    results.warnings[service.name] = service.log_lines()
        return results


# --- the command ------------------------------------------------------------------------------


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
            "notifications: every rep has an email (a local mailbox) and a webhook subscription "
            "takes every assigned and accepted event"
            if args.notify
            else "notifications: none (reps without addresses, no subscriptions)",
        ]
    )


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Hand-off latency of the whole stack.")
    parser.add_argument("--rate", type=float, default=1_000.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the load runs")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive connections")
    parser.add_argument(
        "--notify",
        action="store_true",
        help="reps get emails (to a local mailbox) and a webhook subscription takes hand-offs",
    )
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
        print(report(args, results, CROSSING_EVERY))
        record_results(args, results)
        if results.notices is not None:
            emails, webhooks = results.notices
            print(f"notifications received by the end: {emails:,} emails, {webhooks:,} webhooks")


if __name__ == "__main__":
    main()

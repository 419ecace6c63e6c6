"""History benchmark: does a lead with a long history show a new interaction as fast as a new
lead does?

What it measures, on this machine, in one run, with ingest and scoring as `leadflow up` runs
them (`python -m leadflow serve ingest|scoring`, processes):

1. two leads are loaded: one with N stored interactions (default 20,000: page views, email
   opens and clicks spread over the last 30 days) and the reference, one with 5. Their
   records are produced to `lead.interactions` in bulk, exactly as ingest publishes them
   (pipelined, acks=all), and the run waits until `GET /v1/leads/{id}` on scoring counts
   them all.
2. time to visible: page views are POSTed to ingest (`POST /v1/events`) one at a time,
   alternating between the two leads so that the machine's noise falls on both alike;
   after each, `GET /v1/leads/{id}` is asked (one request at a time, on a keep-alive
   connection) until its `interaction_count` is one higher. The time from just before the
   POST to the answer that shows it is that view's time to visible. A few views of each
   lead before the measured ones are not counted (warm-up). Reported: p50 and p95 of each
   lead, and the ratio (goal: the long history within 2x of the short one).
3. `GET /v1/leads/{id}` alone: asked for each lead in turn, p50 and p95.

Broker: the embedded Tansu (memory storage), topics by `shared.kafka.create_topics`.
PostgreSQL: the server of DATABASE_URL if set, else 127.0.0.1:5432 (trust auth) if it
answers, else the embedded PostgreSQL wheel; a fresh database `leadflow_bench_history_<random>`
is created, migrated, and dropped at the end. Every process started here is stopped by its
pid; only 127.0.0.1 is used; the whole run is bounded in time. Everything shares the
machine's cores, so absolute numbers move from run to run: compare the ratio. Nothing here
asserts.

Run from the repository root:

    .venv/bin/python bench/history.py [--history 20000] [--views 30] [--gets 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import secrets
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: find `bench`

from bench.common import (
    as_published,
    fresh_database,
    load_average,
    percentile,
    postgres_server,
    record,
    render,
    run_within,
    scratch,
    start_logged_broker,
)
from bench.e2e import (
    all_ready,
    encoded,
    exited_early,
    running_services,
    service_environment,
)
from bench.scoring import produce
from bench.servers import HttpConnection, Server, request_head
from shared.kafka import create_topics
from shared.settings import Settings

SHORT_HISTORY = 5
SEED = 20_261_313
RUN_TAG = f"history-{int(time.time())}"
SPAN = timedelta(days=30)
HISTORY_KINDS = (("web", "page_view"), ("email", "open"), ("email", "click"))
URLS = ("/", "/blog/lead-scoring", "/product", "/customers", "/docs/start")
WARM_UP_VIEWS = 2  # per lead, not counted
POLL_SECONDS = 0.005  # between two reads of the lead while waiting for a view
VISIBLE_WITHIN_SECONDS = 120.0  # one view; a slower one fails the run
LOAD_WITHIN_SECONDS = 600.0
RATIO_GOAL = 2.0  # the long history's time to visible within 2x of the short one's


@dataclass
class Lead:
    label: str
    email: str
    id: str = ""
    count: int = 0  # interactions scoring shows
    visible: list[float] = field(default_factory=list)  # POST to shown, per measured view
    reads: list[float] = field(default_factory=list)  # seconds per GET /v1/leads/{id}


def history_of(email: str, count: int, rng: random.Random) -> list[dict[str, Any]]:
    """`count` interactions of one lead, in time order over the last 30 days."""
    now = datetime.now(UTC)
    events = []
    for number in range(count):
        channel, kind = rng.choice(HISTORY_KINDS)
        at = now - SPAN + SPAN * (number + 1) / (count + 1)
        events.append(
            {
                "id": f"{RUN_TAG}-{email}-{number}",
                "channel": channel,
                "type": kind,
                "time": at.isoformat(),
                "contact": {"email": email},
                "properties": {"url": rng.choice(URLS)},
            }
        )
    return events


def page_view(email: str, number: int) -> dict[str, Any]:
    """A page view now (no time: ingest stamps its receipt)."""
    return {
        "id": f"{RUN_TAG}-view-{email}-{number}",
        "channel": "web",
        "type": "page_view",
        "contact": {"email": email},
        "properties": {"url": "/product"},
    }


class Scoring:
    """Reads of scoring's lead routes on one keep-alive connection, as the admin."""

    def __init__(self, server: Server, admin_key: str, connection: HttpConnection) -> None:
        self.server = server
        self.admin = {"Authorization": f"Bearer {admin_key}"}
        self.connection = connection

    async def _get(self, path: str) -> Any:
        head = request_head("GET", self.server.port, path, self.admin)
        status, body = await self.connection.request(head)
        if status != 200:
            raise RuntimeError(f"GET {path} answered {status}: {body[:300]!r}")
        return json.loads(body)

    async def lead_id(self, email: str) -> str | None:
        page = await self._get(f"/v1/leads?email={email}")
        return page["items"][0]["id"] if page["items"] else None

    async def interaction_count(self, lead_id: str) -> int:
        count: int = (await self._get(f"/v1/leads/{lead_id}"))["interaction_count"]
        return count


async def until_loaded(scoring: Scoring, lead: Lead, expected: int) -> None:
    """Until scoring has the lead and counts `expected` interactions of it."""
    deadline = time.monotonic() + LOAD_WITHIN_SECONDS
    while time.monotonic() < deadline:
        if not lead.id:
            lead.id = await scoring.lead_id(lead.email) or ""
        if lead.id:
            lead.count = await scoring.interaction_count(lead.id)
            if lead.count >= expected:
                return
        await asyncio.sleep(0.5)
    raise RuntimeError(f"scoring had {lead.count} of {expected} interactions of the {lead.label}")


async def time_to_visible(
    ingest: HttpConnection, ingest_port: int, scoring: Scoring, lead: Lead, number: int
) -> float:
    """POST one page view of the lead; the seconds until scoring's detail route counts it."""
    posted = time.perf_counter()
    status, answer = await ingest.request(encoded(page_view(lead.email, number), ingest_port))
    if status != 202:
        raise RuntimeError(f"POST /v1/events answered {status}: {answer[:300]!r}")
    deadline = posted + VISIBLE_WITHIN_SECONDS
    while time.perf_counter() < deadline:
        count = await scoring.interaction_count(lead.id)
        if count > lead.count:
            lead.count = count
            return time.perf_counter() - posted
        await asyncio.sleep(POLL_SECONDS)
    raise RuntimeError(
        f"a page view of the {lead.label} was not shown in {VISIBLE_WITHIN_SECONDS}s"
    )


async def read_time(scoring: Scoring, lead: Lead) -> float:
    started = time.perf_counter()
    await scoring.interaction_count(lead.id)
    return time.perf_counter() - started


async def measure(
    args: argparse.Namespace, services: dict[str, Server], admin_key: str, leads: list[Lead]
) -> float:
    """Every measurement of the run, into `leads`; answers the seconds the load took."""
    ingest_port = services["ingest"].port
    ingest = await HttpConnection.open(ingest_port)
    scoring_connection = await HttpConnection.open(services["scoring"].port)
    scoring = Scoring(services["scoring"], admin_key, scoring_connection)
    try:
        started = time.perf_counter()
        for lead, expected in zip(leads, (args.history, SHORT_HISTORY), strict=True):
            await until_loaded(scoring, lead, expected)
        loaded = time.perf_counter() - started
        print(f"scoring showed both histories {loaded:.1f} s after the services were up")
        for number in range(WARM_UP_VIEWS + args.views):
            for lead in leads:
                seconds = await time_to_visible(ingest, ingest_port, scoring, lead, number)
                if number >= WARM_UP_VIEWS:
                    lead.visible.append(seconds)
            if (number + 1) % 10 == 0:
                print(f"  {number + 1} of {WARM_UP_VIEWS + args.views} page views per lead")
        for _ in range(args.gets):
            for lead in leads:
                lead.reads.append(await read_time(scoring, lead))
        return loaded
    finally:
        await ingest.close()
        await scoring_connection.close()


# --- the report -------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{1000 * seconds:,.1f}"


def p50_p95(values: list[float]) -> str:
    return f"{ms(percentile(values, 0.5))} / {ms(percentile(values, 0.95))}"


def report(long: Lead, short: Lead, history: int) -> str:
    visible = percentile(long.visible, 0.5) / percentile(short.visible, 0.5)
    reads = percentile(long.reads, 0.5) / percentile(short.reads, 0.5)
    verdict = "meets" if visible <= RATIO_GOAL else "misses"
    rows = [
        [
            f"page view -> shown by GET /v1/leads/{{id}}, p50 / p95 ms ({len(long.visible)} views)",
            p50_p95(long.visible),
            p50_p95(short.visible),
            f"x{visible:.2f} ({verdict} goal <= x{RATIO_GOAL:g})",
        ],
        [
            f"GET /v1/leads/{{id}} alone, p50 / p95 ms ({len(long.reads)} reads)",
            p50_p95(long.reads),
            p50_p95(short.reads),
            f"x{reads:.2f}",
        ],
    ]
    header = [
        "metric",
        f"lead with {history:,} interactions",
        f"reference: lead with {SHORT_HISTORY}",
        "ratio (median)",
    ]
    return render(header, rows)


def record_results(long: Lead, short: Lead, history: int) -> None:
    """The two medians, each against the short history's, for `make bench`'s summary."""
    for what, ours, reference, goal in (
        ("page view -> visible", long.visible, short.visible, 1 / RATIO_GOAL),
        ("GET /v1/leads/{id}", long.reads, short.reads, None),
    ):
        record(
            f"history: {what}, p50, lead with {history:,} interactions",
            1000 * percentile(ours, 0.5),
            1000 * percentile(reference, 0.5),
            unit="ms",
            reference_is=f"the same for a lead with {SHORT_HISTORY} interactions",
            goal=goal,
            higher_is_better=False,
        )


# --- the run ----------------------------------------------------------------------------------


async def run(args: argparse.Namespace, broker_bootstrap: str, server_url: str, logs: Path) -> str:
    rng = random.Random(SEED)
    long = Lead("long history", f"long-history@{RUN_TAG}.example.com")
    short = Lead("short history", f"short-history@{RUN_TAG}.example.com")
    received_at = datetime.now(UTC)
    records = [
        as_published(event, received_at)
        for lead, count in ((long, args.history), (short, SHORT_HISTORY))
        for event in history_of(lead.email, count, rng)
    ]
    async with fresh_database(server_url, "leadflow_bench_history") as database_url:
        settings = Settings(KAFKA_BOOTSTRAP_SERVERS=broker_bootstrap, DATABASE_URL=database_url)
        await create_topics(settings)
        produced = await produce(settings, records)
        print(f"produced {len(records):,} records in {produced:.1f} s; starting the services")
        admin_key = f"admin-{secrets.token_urlsafe(18)}"
        environment = service_environment(broker_bootstrap, database_url, admin_key)
        with running_services(environment, logs, ("ingest", "scoring")) as services:
            await all_ready(services)
            loaded = await measure(args, services, admin_key, [long, short])
            exited_early(services)
            warnings = {name: service.log_lines() for name, service in services.items()}
    record_results(long, short, args.history)
    notes = [
        f"load average at the end: {load_average()}",
        f"loading: {len(records):,} records produced in {produced:.1f} s, all shown by "
        f"scoring {loaded:.1f} s after it was up",
    ]
    for name, lines in warnings.items():
        if lines:
            notes.append(
                f"NOTE: {name} logged {len(lines):,} lines at WARNING or above; "
                f"first: {lines[0][:300]}"
            )
    return "\n".join(["", report(long, short, args.history), "", *notes])


def preamble(args: argparse.Namespace, postgres: str) -> str:
    return "\n".join(
        [
            "leadflow history benchmark: page view -> shown on a lead with a long history, "
            "against a lead with a short one",
            f"machine: {os.cpu_count()} CPU cores, load average {load_average()} at start; "
            "this process, ingest, scoring, the broker and PostgreSQL share these cores",
            f"python {platform.python_version()}; PostgreSQL: {postgres}, a fresh database; "
            "Tansu broker (memory storage)",
            f"leads: one with {args.history:,} interactions, one with {SHORT_HISTORY}; "
            f"{args.views} measured page views each (after {WARM_UP_VIEWS} not counted), "
            f"{args.gets} reads each",
        ]
    )


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Time to visible on a lead with a long history.")
    parser.add_argument("--history", type=int, default=20_000, help="interactions of the long lead")
    parser.add_argument("--views", type=int, default=30, help="measured page views per lead")
    parser.add_argument("--gets", type=int, default=20, help="timed reads of each lead")
    args = parser.parse_args()
    if args.history <= SHORT_HISTORY or args.views < 1 or args.gets < 1:
        parser.error(f"--history must be > {SHORT_HISTORY}, --views and --gets >= 1")
    return args


def main() -> None:
    args = parse_arguments()
    with scratch() as (stack, logs):
        broker = start_logged_broker(stack, logs)
        server_url, postgres = postgres_server(stack, logs)
        print(preamble(args, postgres), flush=True)
        budget = LOAD_WITHIN_SECONDS + args.history / 100 + 2 * (args.views + WARM_UP_VIEWS) * 10
        print(run_within(run(args, broker.bootstrap_servers, server_url, logs), budget))


if __name__ == "__main__":
    main()

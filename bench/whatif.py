"""What-if over 1,000,000 stored interactions: how long `leadflow whatif` takes.

Generates N interactions (default 1,000,000, ~10 per lead) straight into a fresh
database's `scoring.interactions` with COPY, then times the what-if replay of every lead
against the active and a candidate definitions (the hand-off at 80 instead of 100), beside
the floor it cannot beat: streaming the same histories out of PostgreSQL (one row per lead,
as the replay reads them) and doing nothing.

    .venv/bin/python bench/whatif.py [--interactions N]

Uses DATABASE_URL if set, else PostgreSQL at 127.0.0.1:5432, else the embedded one.
Goal: 1,000,000 interactions in at most 10 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: find `bench`

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bench.common import REPO_ROOT, fresh_database, load_average, postgres_server, record, scratch
from services.scoring.history_stream import HISTORY_QUERY, STREAM_CHUNK
from services.scoring.replay import SLICES, project_funnels
from shared.definitions import load_definitions

DEFINITIONS = REPO_ROOT / "lead-definitions.yaml"
GOAL_INTERACTIONS = 1_000_000
GOAL_SECONDS = 10.0
KINDS = [
    ("web", "page_view", 30),
    ("web", "content_download", 10),
    ("web", "form_submit", 5),
    ("web", "demo_request", 1),
    ("email", "open", 25),
    ("email", "click", 12),
    ("email", "unsubscribe", 1),
    ("tradeshow", "badge_scan", 4),
    ("tradeshow", "meeting", 2),
    ("social", "share", 5),
    ("social", "message", 5),
]
CAMPAIGNS = [None, None, None, "newsletter", "linkedin-ads", "q4-webinar", "websummit-2026"]
TITLES = ["CTO", "VP Sales", "Marketing Manager", "Student", "Head of Data", "Engineer"]


def rows(count: int, seed: int = 7) -> list[tuple[object, ...]]:
    generate = random.Random(seed)
    kinds, weights = [k[:2] for k in KINDS], [k[2] for k in KINDS]
    start = datetime.now(UTC) - timedelta(days=180)
    out: list[tuple[object, ...]] = []
    lead = str(uuid.uuid4())
    for n in range(count):
        if n % 10 == 0:
            lead = str(uuid.uuid4())
            profile = json.dumps(
                {
                    "email": f"lead{n}@example.com",
                    "company": f"Company {n % 5000}",
                    "job_title": generate.choice(TITLES),
                    "company_size": generate.choice([5, 50, 300, 2000]),
                    "country": generate.choice(["DE", "GB", "US", "FR", "BR"]),
                }
            )
        else:
            profile = None
        channel, kind = generate.choices(kinds, weights)[0]
        url = "/pricing" if kind == "page_view" and generate.random() < 0.2 else "/blog"
        out.append(
            (
                f"bench-{n}",
                lead,
                start + timedelta(seconds=generate.uniform(0, 180 * 86400)),
                channel,
                kind,
                generate.choice(CAMPAIGNS),
                url,
                "guide.pdf",
                "linkedin",
                profile,
            )
        )
    return out


@asynccontextmanager
async def asyncpg_connection(url: str) -> AsyncIterator[Any]:
    """The driver's (asyncpg's) own connection, under SQLAlchemy's; disposed on the way out."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            raw = (await connection.get_raw_connection()).driver_connection
            assert raw is not None
            yield raw
            await connection.commit()
    finally:
        await engine.dispose()


async def fill(url: str, count: int) -> float:
    started = time.perf_counter()
    async with asyncpg_connection(url) as raw:
        await raw.copy_records_to_table(
            "interactions",
            schema_name="scoring",
            records=rows(count),
            columns=[
                "event_id",
                "lead_id",
                "event_time",
                "channel",
                "type",
                "campaign",
                "url",
                "asset",
                "network",
                "profile",
            ],
        )
    # As a database that has been live a while would be: hint bits set, statistics known.
    vacuum = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with vacuum.connect() as connection:
            await connection.execute(text("VACUUM ANALYZE scoring.interactions"))
    finally:
        await vacuum.dispose()
    return time.perf_counter() - started


async def stream_only(url: str) -> float:
    started = time.perf_counter()
    async with asyncpg_connection(url) as raw, raw.transaction():
        everything = (SLICES[0][0], SLICES[-1][1])
        async for _ in raw.cursor(HISTORY_QUERY, *everything, prefetch=STREAM_CHUNK):
            pass
    return time.perf_counter() - started


def whatif(url: str, candidate: Path) -> tuple[float, int]:
    definitions = [
        load_definitions(DEFINITIONS).definitions,
        load_definitions(candidate).definitions,
    ]
    started = time.perf_counter()
    projections = project_funnels(url, definitions, datetime.now(UTC).timestamp(), lambda _: None)
    return time.perf_counter() - started, projections[0].leads


async def main(count: int, server_url: str, scratch_dir: Path) -> None:
    async with fresh_database(server_url, "leadflow_bench_whatif") as url:
        candidate = scratch_dir / "candidate.yaml"
        candidate.write_text(
            DEFINITIONS.read_text().replace("{score: 100, grade: B,", "{score: 80, grade: B,")
        )
        loaded = await fill(url, count)
        floor = await stream_only(url)
        took, leads = await asyncio.to_thread(whatif, url, candidate)
        _print_table(count, leads, loaded, floor, took)
        record(
            f"whatif: replay {count:,} interactions, active + candidate",
            took,
            floor,
            unit="s",
            reference_is="stream the same histories out of PostgreSQL, no scoring",
            higher_is_better=False,
        )


def _print_table(count: int, leads: int, loaded: float, floor: float, took: float) -> None:
    print(f"{count:,} interactions of {leads:,} leads (generated and COPYed in {loaded:.1f} s)")
    print(f"{'metric':<46} | {'leadflow':>12} | {'reference (what it is)':<52} | ratio")
    print(f"{'-' * 46}-+-{'-' * 12}-+-{'-' * 52}-+------")
    print(
        f"{'whatif: replay every lead, active + candidate':<46} | {took:>10.1f} s | "
        f"{f'{floor:.1f} s: stream the same histories, no scoring':<52} | {floor / took:.2f}"
    )
    print(
        f"{'interactions/s through whatif':<46} | {count / took:>12,.0f} | "
        f"{f'{count / floor:,.0f}: streaming alone':<52} |"
    )
    goal = f"goal: {GOAL_INTERACTIONS:,} interactions in <= {GOAL_SECONDS:g} s"
    if count == GOAL_INTERACTIONS:
        print(f"{goal}: {'meets' if took <= GOAL_SECONDS else 'below'} ({took:.1f} s)")
    else:
        print(f"{goal} (this run replayed {count:,}, so it does not say)")
    print(f"load average while measuring: {load_average()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interactions", type=int, default=1_000_000)
    interactions = parser.parse_args().interactions
    with scratch() as (stack, directory):
        server_url, _ = postgres_server(stack, directory)
        asyncio.run(main(interactions, server_url, directory))

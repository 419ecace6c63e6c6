"""`leadflow rescore` and `leadflow whatif`: replay stored history, with progress bars."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Table

from services.router.domain import LeadToRoute, team_for
from services.router.queries import RouterQueries
from services.scoring.handlers import ScoringService
from services.scoring.queries import ScoringQueries
from services.scoring.replay import FunnelProjection, project_funnels, rescore_all
from services.scoring.tables import outbox
from services.scoring.unit_of_work import unit_of_work
from shared.db import new_engine
from shared.definitions import load_definitions
from shared.definitions.model import LeadDefinitions
from shared.kafka import new_producer
from shared.outbox import OutboxRelay
from shared.settings import Settings

console = Console(stderr=True)


def _progress() -> Progress:
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
    )


async def rescore(settings: Settings) -> None:
    """Score every lead afresh under the configured definitions and publish what changed."""
    loaded = load_definitions(settings.definitions_path)
    engine = new_engine(settings.require_database())
    producer = new_producer(settings, linger_ms=5)
    try:
        service = ScoringService(partial(unit_of_work, engine), loaded)
        total = await ScoringQueries(engine).lead_count()
        with _progress() as bar:
            task = bar.add_task(f"rescoring under {loaded.version}", total=total)
            emitted = await rescore_all(service, lambda n: bar.advance(task, n))
        await producer.start()
        relay = OutboxRelay(engine, outbox, producer)
        while await relay.publish_pending():
            pass
        console.print(f"rescored {total} leads; {emitted} lifecycle events published")
    finally:
        await producer.stop()
        await engine.dispose()


def _side_by_side(
    title: str, active: dict[str, int], candidate: dict[str, int], keys: list[str]
) -> Table:
    table = Table(title=title)
    for column in ("", "active", "candidate", "change"):
        table.add_column(column, justify="left" if not column else "right")
    for key in keys:
        before, after = active.get(key, 0), candidate.get(key, 0)
        table.add_row(key, f"{before:,}", f"{after:,}", f"{after - before:+,}")
    return table


def print_projection(
    active: FunnelProjection, candidate: FunnelProjection, stages: list[str], grades: list[str]
) -> None:
    out = Console()
    out.print(
        _side_by_side("Leads per stage", active.by_stage, candidate.by_stage, [*stages, "(none)"])
    )
    out.print(_side_by_side("Leads per grade", active.by_grade, candidate.by_grade, grades))
    weeks = sorted(set(active.hand_offs_by_week) | set(candidate.hand_offs_by_week))
    out.print(
        _side_by_side(
            "Hand-offs to sales per week",
            active.hand_offs_by_week,
            candidate.hand_offs_by_week,
            weeks,
        )
    )


async def whatif(settings: Settings, candidate_file: Path) -> None:
    """Replay the stored history against candidate definitions beside the active ones."""
    active = load_definitions(settings.definitions_path)
    candidate = load_definitions(candidate_file)
    engine = new_engine(settings.require_database())
    try:
        total = await ScoringQueries(engine).interaction_count()
    finally:
        await engine.dispose()
    started = time.perf_counter()
    with _progress() as bar:
        task = bar.add_task("replaying interactions", total=total)
        projections = await asyncio.to_thread(
            project_funnels,
            settings.require_database(),
            [active.definitions, candidate.definitions],
            datetime.now(UTC).timestamp(),
            lambda n: bar.advance(task, n),
        )
    elapsed = time.perf_counter() - started
    stages = list(
        dict.fromkeys(
            [s.key for s in active.definitions.stages]
            + [s.key for s in candidate.definitions.stages]
        )
    )
    grades = list(
        dict.fromkeys(
            [g.grade for g in active.definitions.grades.levels]
            + [g.grade for g in candidate.definitions.grades.levels]
        )
    )
    print_projection(projections[0], projections[1], stages, grades)
    if candidate.definitions.routing is not None:
        Console().print(await rep_load(settings, candidate.definitions, projections))
    console.print(
        f"active {active.version} vs candidate {candidate.version}: "
        f"{projections[0].leads:,} leads, {total:,} interactions replayed in {elapsed:.1f}s; "
        "nothing was changed"
    )


async def rep_load(
    settings: Settings, definitions: LeadDefinitions, projections: list[FunnelProjection]
) -> Table:
    """New leads per week each active rep would get, beside their capacity (open leads)."""
    routing = definitions.routing
    assert routing is not None
    engine = new_engine(settings.require_database())
    try:
        roster = [rep for rep in await RouterQueries(engine).reps() if rep.active]
    finally:
        await engine.dispose()
    per_team = []
    for projection in projections:
        teams: Counter[str] = Counter()
        for (country, size, industry), count in projection.hand_offs_by_profile.items():
            lead = LeadToRoute("", None, country=country, company_size=size, industry=industry)
            teams[team_for(routing, lead).key] += count
        per_team.append({team: count / projection.weeks for team, count in teams.items()})
    table = Table(title="Load per rep: new leads per week against capacity (open leads)")
    for column in ("rep", "team", "capacity", "active", "candidate"):
        table.add_column(column, justify="left" if column in ("rep", "team") else "right")
    weights: defaultdict[str, float] = defaultdict(float)
    for row in roster:
        weights[row.team] += row.weight
    for row in roster:
        share = row.weight / weights[row.team]
        loads = [weekly.get(row.team, 0.0) * share for weekly in per_team]
        marks = ["[red]" if load > row.capacity else "" for load in loads]
        table.add_row(
            row.name,
            row.team,
            str(row.capacity),
            *(f"{m}{load:.1f}" for m, load in zip(marks, loads, strict=True)),
        )
    if not roster:
        table.add_row("(no reps yet: add them with POST /v1/reps)", "", "", "", "")
    return table

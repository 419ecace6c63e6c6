"""Replaying the stored history: what-if projections and rescoring every lead."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.scoring.domain import Interaction, ScoringModel, evaluate
from services.scoring.handlers import ScoringService
from services.scoring.tables import interactions, leads

Progress = Callable[[int], None]
STREAM_CHUNK = 20_000
_HISTORY_QUERY = (
    "SELECT lead_id::text, event_id, extract(epoch FROM event_time)::float8, channel, type, "
    "campaign, url, asset, network, profile::text FROM scoring.interactions ORDER BY lead_id"
)


@dataclass
class FunnelProjection:
    """How the funnel would look under one set of definitions."""

    leads: int = 0
    by_stage: Counter[str] = field(default_factory=Counter)
    by_grade: Counter[str] = field(default_factory=Counter)
    hand_offs_by_week: Counter[str] = field(default_factory=Counter)

    def add(self, model: ScoringModel, history: list[Interaction], as_of: float) -> None:
        result = evaluate(model, history, as_of)
        hand_off = model.stage_keys[model.hand_off]
        self.leads += 1
        self.by_stage[result.stage or "(none)"] += 1
        self.by_grade[result.grade] += 1
        for reached in result.stages_reached:
            if reached.stage == hand_off:
                year, week, _ = datetime.fromtimestamp(reached.time, UTC).isocalendar()
                self.hand_offs_by_week[f"{year}-W{week:02d}"] += 1


async def count_interactions(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(interactions)) or 0)


async def count_leads(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(leads)) or 0)


async def lead_histories(
    engine: AsyncEngine, progress: Progress
) -> AsyncIterator[list[Interaction]]:
    """Every lead's stored interactions, one lead at a time, streamed from the database."""
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        async with driver.transaction():
            current: str | None = None
            history: list[Interaction] = []
            seen = 0
            async for row in driver.cursor(_HISTORY_QUERY, prefetch=STREAM_CHUNK):
                lead_id, profile = row[0], row[9]
                if lead_id != current and history:
                    yield history
                    history = []
                current = lead_id
                history.append(
                    Interaction(
                        row[1],
                        row[2],
                        row[3],
                        row[4],
                        row[5],
                        row[6],
                        row[7],
                        row[8],
                        json.loads(profile) if profile else None,
                    )
                )
                seen += 1
                if seen % STREAM_CHUNK == 0:
                    progress(STREAM_CHUNK)
            if history:
                yield history
            progress(seen % STREAM_CHUNK)


async def project_funnels(
    engine: AsyncEngine, models: list[ScoringModel], as_of: float, progress: Progress
) -> list[FunnelProjection]:
    """Replay every lead against each set of definitions; change nothing."""
    projections = [FunnelProjection() for _ in models]
    async for history in lead_histories(engine, progress):
        for model, projection in zip(models, projections, strict=True):
            projection.add(model, history, as_of)
    return projections


async def rescore_all(service: ScoringService, progress: Progress, chunk: int = 500) -> int:
    """Score every lead afresh under the service's definitions; answer the events emitted.

    Each chunk of leads is one transaction, so an interrupted rescore can simply be run
    again: leads already rescored have nothing left to emit.
    """
    emitted = 0
    after: str | None = None
    while True:
        query = select(leads.c.id).order_by(leads.c.id).limit(chunk)
        if after is not None:
            query = query.where(leads.c.id > after)
        async with service.engine.begin() as connection:
            ids = list(await connection.scalars(query))
            if not ids:
                return emitted
            emitted += await service.reevaluate(connection, set(ids))
        progress(len(ids))
        after = ids[-1]

"""Replaying the stored history: what-if projections and rescoring every lead."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime

from services.scoring.domain import ScoringModel, StoredInteraction, evaluate
from services.scoring.handlers import ScoringService
from services.scoring.history_stream import lead_histories
from shared.db import new_engine
from shared.definitions.model import LeadDefinitions

Progress = Callable[[int], None]
# The lead-id space cut in 16 slices, replayed in parallel by worker processes.
SLICES = [
    (
        f"{digit:x}0000000-0000-0000-0000-000000000000",
        f"{digit:x}fffffff-ffff-ffff-ffff-ffffffffffff",
    )
    for digit in range(16)
]


@dataclass
class FunnelProjection:
    """How the funnel would look under one set of definitions."""

    leads: int = 0
    by_stage: Counter[str] = field(default_factory=Counter)
    by_grade: Counter[str] = field(default_factory=Counter)
    hand_offs_by_week: Counter[str] = field(default_factory=Counter)
    # Who was handed off, as routing sees a lead: (country, company size, industry).
    hand_offs_by_profile: Counter[tuple[str | None, int | None, str | None]] = field(
        default_factory=Counter
    )

    def merge(self, other: FunnelProjection) -> None:
        self.leads += other.leads
        self.by_stage.update(other.by_stage)
        self.by_grade.update(other.by_grade)
        self.hand_offs_by_week.update(other.hand_offs_by_week)
        self.hand_offs_by_profile.update(other.hand_offs_by_profile)

    @property
    def weeks(self) -> int:
        return max(len(self.hand_offs_by_week), 1)

    def add(self, model: ScoringModel, history: list[StoredInteraction], as_of: float) -> None:
        result = evaluate(model, history, as_of)
        hand_off = model.stage_keys[model.hand_off]
        self.leads += 1
        self.by_stage[result.stage or "(none)"] += 1
        self.by_grade[result.grade] += 1
        profile = result.profile
        for reached in result.stages_reached:
            if reached.stage == hand_off:
                year, week, _ = datetime.fromtimestamp(reached.time, UTC).isocalendar()
                self.hand_offs_by_week[f"{year}-W{week:02d}"] += 1
                routed_as = (
                    profile.get("country"),
                    profile.get("company_size"),
                    profile.get("industry"),
                )
                self.hand_offs_by_profile[routed_as] += 1


async def _project_slice(
    database_url: str, models: list[ScoringModel], as_of: float, lead_slice: tuple[str, str]
) -> tuple[list[FunnelProjection], int]:
    engine = new_engine(database_url, pool_size=1)
    projections = [FunnelProjection() for _ in models]
    replayed = 0
    try:
        async for history in lead_histories(engine, lead_slice):
            replayed += len(history)
            for model, projection in zip(models, projections, strict=True):
                projection.add(model, history, as_of)
    finally:
        await engine.dispose()
    return projections, replayed


def _project_slice_in_process(
    database_url: str, definitions: list[LeadDefinitions], as_of: float, lead_slice: tuple[str, str]
) -> tuple[list[FunnelProjection], int]:
    models = [ScoringModel(d) for d in definitions]
    return asyncio.run(_project_slice(database_url, models, as_of, lead_slice))


def project_funnels(
    database_url: str,
    definitions: list[LeadDefinitions],
    as_of: float,
    progress: Progress,
    workers: int = os.cpu_count() or 1,
) -> list[FunnelProjection]:
    """Replay every lead against each set of definitions, in parallel; change nothing.

    `progress` is told how many interactions each finished slice replayed.
    """
    totals = [FunnelProjection() for _ in definitions]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [
            pool.submit(_project_slice_in_process, database_url, definitions, as_of, lead_slice)
            for lead_slice in SLICES
        ]
        for future in as_completed(futures):
            projections, replayed = future.result()
            for total, projection in zip(totals, projections, strict=True):
                total.merge(projection)
            progress(replayed)
    return totals


async def rescore_all(service: ScoringService, progress: Progress, chunk: int = 500) -> int:
    """Score every lead afresh under the service's definitions; answer the events emitted.

    Each chunk of leads is one transaction, so an interrupted rescore can simply be run
    again: leads already rescored have nothing left to emit.
    """
    emitted = 0
    after: str | None = None
    while True:
        ids, events = await service.rescore(after, chunk)
        if not ids:
            return emitted
        emitted += events
        progress(len(ids))
        after = ids[-1]

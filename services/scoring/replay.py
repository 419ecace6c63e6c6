"""Replaying the stored history: what-if projections and rescoring every lead."""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import os
import queue
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import Synchronized
from typing import TYPE_CHECKING, Any

from services.scoring.domain import ScoringModel, StoredInteraction, evaluate
from services.scoring.history_stream import lead_histories
from shared.db import new_engine
from shared.definitions.model import LeadDefinitions

if TYPE_CHECKING:
    from services.scoring.handlers import ScoringService

Progress = Callable[[int], None]
# The lead-id space cut in small slices: the processes replaying it take the next slice
# still free, so all of them finish at about the same time whatever the data's skew.
SLICE_COUNT = 64
SLICES = [
    (
        f"{n * 2**32 // SLICE_COUNT:08x}-0000-0000-0000-000000000000",
        f"{(n + 1) * 2**32 // SLICE_COUNT - 1:08x}-ffff-ffff-ffff-ffffffffffff",
    )
    for n in range(SLICE_COUNT)
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


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """A replay makes and drops millions of small objects and no reference cycle: the
    cycle collector would only walk them (a tenth of the time) and find nothing."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _claim(claimed: Synchronized[int]) -> int:
    """The index of the next slice no process has taken yet (past the end: none left)."""
    with claimed.get_lock():
        index: int = claimed.value
        claimed.value += 1
    return index


async def _project_slices(
    database_url: str,
    models: list[ScoringModel],
    as_of: float,
    claimed: Synchronized[int],
    on_slice: Progress,
) -> list[FunnelProjection]:
    """Replay slice after slice, as long as one is free, over one connection."""
    projections = [FunnelProjection() for _ in models]
    engine = new_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as connection:
            with _no_cycle_collection():
                while (index := _claim(claimed)) < len(SLICES):
                    replayed = 0
                    async for history in lead_histories(connection, SLICES[index]):
                        replayed += len(history)
                        for model, projection in zip(models, projections, strict=True):
                            projection.add(model, history, as_of)
                    on_slice(replayed)
    finally:
        await engine.dispose()
    return projections


# What a helper process tells the one that started it: ("replayed", interactions of a
# slice), then ("projected", its projections) or ("failed", the traceback).
Report = tuple[str, Any]


def _project_in_helper(
    database_url: str,
    definitions: list[LeadDefinitions],
    as_of: float,
    claimed: Synchronized[int],
    reports: Queue[Report],
) -> None:
    try:
        projections = asyncio.run(
            _project_slices(
                database_url,
                [ScoringModel(d) for d in definitions],
                as_of,
                claimed,
                lambda replayed: reports.put(("replayed", replayed)),
            )
        )
    except BaseException:
        reports.put(("failed", traceback.format_exc()))
        raise
    reports.put(("projected", projections))


class _Helpers:
    """Helper processes replaying beside this one, and what they reported so far."""

    def __init__(self, processes: list[BaseProcess], reports: Queue[Report]) -> None:
        self._processes = processes
        self._reports = reports
        self.projected: list[list[FunnelProjection]] = []

    def start(self) -> None:
        for process in self._processes:
            process.start()

    def take(self, report: Report, progress: Progress) -> None:
        kind, content = report
        if kind == "replayed":
            progress(content)
        elif kind == "projected":
            self.projected.append(content)
        else:
            raise RuntimeError(f"a what-if helper process failed:\n{content}")

    def forward(self, progress: Progress) -> None:
        """Pass on what arrived, without waiting."""
        while True:
            try:
                report = self._reports.get_nowait()
            except queue.Empty:
                return
            self.take(report, progress)

    def wait(self, progress: Progress) -> list[list[FunnelProjection]]:
        """Every helper's projections, once each has replayed its last slice."""
        while len(self.projected) < len(self._processes):
            try:
                self.take(self._reports.get(timeout=1), progress)
            except queue.Empty:
                if any(p.exitcode not in (None, 0) for p in self._processes):
                    self.forward(progress)  # its traceback, if it could still send it
                    raise RuntimeError("a what-if helper process died") from None
        return self.projected

    def stop(self) -> None:
        for process in self._processes:
            if process.is_alive():
                process.kill()
            process.join()


def project_funnels(
    database_url: str,
    definitions: list[LeadDefinitions],
    as_of: float,
    progress: Progress,
    workers: int = os.cpu_count() or 1,
) -> list[FunnelProjection]:
    """Replay every lead against each set of definitions, in parallel; change nothing.

    This process replays from the first moment, beside `workers - 1` helper processes that
    join in once started (a spawned process first imports the program anew). `progress` is
    told how many interactions each finished slice replayed.
    """
    context = multiprocessing.get_context("spawn")
    claimed = context.Value("i", 0)
    reports: Queue[Report] = context.Queue()
    helpers = _Helpers(
        [
            context.Process(
                target=_project_in_helper,
                args=(database_url, definitions, as_of, claimed, reports),
                daemon=True,
            )
            for _ in range(workers - 1)
        ],
        reports,
    )

    def on_slice(replayed: int) -> None:
        progress(replayed)
        helpers.forward(progress)

    try:
        helpers.start()
        models = [ScoringModel(d) for d in definitions]
        totals = asyncio.run(_project_slices(database_url, models, as_of, claimed, on_slice))
        for projections in helpers.wait(progress):
            for total, projection in zip(totals, projections, strict=True):
                total.merge(projection)
    finally:
        helpers.stop()
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

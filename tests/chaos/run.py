"""One run of the plan against a stack of its own: reps hired, the load posted at its pace
with the faults of the schedule injected, then a bounded wait until the system settles, and
the end state read."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.chaos.faults import FaultInjector, FaultRecord, PlannedFault
from tests.chaos.observe import Snapshot, TopicObserver, fingerprint, not_stored, take_snapshot
from tests.chaos.stack import ADMIN_KEY, ChaosStack, Exit, running_stack
from tests.chaos.workload import Plan, Sender, progress_line

# Room enough in two teams that nothing of theirs waits; the one rep of the americas team
# (the territory of no other team) is on holiday, so every lead routed there is queued; the
# two emea reps take `RunSettings.emea_capacity` leads each and the rest of emea's queue.
# Which leads wait depends on arrival order only in emea, and even there how many do not.
REPS = (("enterprise", 2), ("dach", 2), ("emea", 2), ("americas", 1))
AMPLE = 10_000  # the most the router accepts
LIMITED_TEAM = "emea"
ON_HOLIDAY = "americas"
SETTLED_FOR_SECONDS = 2.0
STUCK_SECONDS = 10.0  # nothing changes while something is still missing: it will not come


@dataclass(frozen=True)
class RunSettings:
    name: str
    rate: float  # interactions posted per second
    faults: list[PlannedFault]
    outage_seconds: float = 0.0
    recovery_within: float = 60.0
    wait_for_recovery: float = 30.0  # at most this long before the next fault
    emea_capacity: int = AMPLE  # of each emea rep
    settle_within: float = 120.0
    progress_every: float = 10.0


@dataclass
class RunResult:
    name: str
    sender: Sender
    faults: list[FaultRecord]
    exits: list[Exit]
    snapshot: Snapshot
    load_seconds: float
    settled_after: float | None  # seconds after the load and the faults; None: not settled
    unsettled: str = ""
    observer_errors: list[str] = field(default_factory=list)
    logs: Path | None = None


async def hire_reps(stack: ChaosStack, plan: Plan, limited_capacity: int) -> None:
    holiday = (plan.now + timedelta(days=30)).isoformat()
    async with httpx.AsyncClient(
        base_url=stack.url("router"), headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=10
    ) as client:
        for team, count in REPS:
            for number in range(count):
                body: dict[str, Any] = {
                    "name": f"{team} rep {number + 1}",
                    "team": team,
                    "capacity": limited_capacity if team == LIMITED_TEAM else AMPLE,
                }
                if team == ON_HOLIDAY:
                    body["out_of_office_until"] = holiday
                answer = await client.post("/v1/reps", json=body)
                if answer.status_code != 201:
                    raise RuntimeError(f"POST /v1/reps: {answer.status_code} {answer.text}")


async def settle(stack: ChaosStack, sender: Sender, within: float) -> tuple[float | None, str]:
    """Wait until scoring stored every accepted interaction, no service has an unsent event,
    and nothing changed for a while; answer how long it took, or None and what was left."""
    started = time.monotonic()
    ids = list(sender.accepted)
    previous: tuple[Any, ...] | None = None
    unchanged_since = started
    left = "nothing read yet"
    while time.monotonic() - started < within:
        engine = stack.engine()
        try:
            stored = len(ids) - len(await not_stored(engine, ids))
            now = await fingerprint(engine)
        except Exception as error:
            left = f"state not readable: {error!r}"[:300]
            now = None
        finally:
            await engine.dispose()
        if now is not None:
            left = (
                f"{stored:,} of {len(ids):,} accepted interactions stored; unsent events: "
                f"scoring {now[0]}, router {now[1]}"
            )
            if stored == len(ids) and now[0] == 0 and now[1] == 0 and now == previous:
                return time.monotonic() - started - SETTLED_FOR_SECONDS, ""
        if now != previous:
            unchanged_since = time.monotonic()
        elif time.monotonic() - unchanged_since >= STUCK_SECONDS:
            return None, f"{left}; nothing changed for {STUCK_SECONDS:.0f}s"
        previous = now
        await asyncio.sleep(SETTLED_FOR_SECONDS)
    return None, left


async def _report_progress(
    sender: Sender,
    total: int,
    faults: FaultInjector,
    every: float,
    say: Callable[[str], None],
    name: str,
) -> None:
    def last_fault() -> str:
        if not faults.records:
            return ""
        return f"· faults {len(faults.records)}, last: {faults.records[-1].summary()}"

    while True:
        await asyncio.sleep(every)
        say(f"[{name}] {progress_line(sender, total, last_fault)}")


async def run_plan(
    plan: Plan, settings: RunSettings, directory: Path, say: Callable[[str], None]
) -> RunResult:
    async with running_stack(directory) as stack:
        await hire_reps(stack, plan, settings.emea_capacity)
        observer = TopicObserver(stack.settings.require_broker())
        stopping = asyncio.Event()
        observing = asyncio.create_task(observer.run(stopping), name="observer")
        sender = Sender(stack.port("ingest"), settings.rate)
        injector = FaultInjector(
            stack,
            observer,
            sender,
            plan.seed,
            settings.outage_seconds,
            settings.recovery_within,
            settings.wait_for_recovery,
        )
        progress = asyncio.create_task(
            _report_progress(
                sender, len(plan.events), injector, settings.progress_every, say, settings.name
            )
        )
        try:
            started = time.monotonic()
            await asyncio.gather(
                sender.run(plan.events, started), injector.run(settings.faults, started)
            )
            load_seconds = time.monotonic() - started
            progress.cancel()
            say(f"[{settings.name}] load done in {load_seconds:.1f}s; waiting to settle")
            settled_after, unsettled = await settle(stack, sender, settings.settle_within)
            await observer.quiet(SETTLED_FOR_SECONDS, within=15)
            engine = stack.engine()
            try:
                snapshot = await take_snapshot(engine, stack.url("router"), observer)
            finally:
                await engine.dispose()
        finally:
            progress.cancel()
            stopping.set()
            await asyncio.gather(progress, return_exceptions=True)
            (ended,) = await asyncio.gather(observing, return_exceptions=True)
            if isinstance(ended, Exception):
                observer.errors.append(f"the observer failed: {ended!r}")
    return RunResult(
        settings.name,
        sender,
        injector.records,
        stack.exits,
        snapshot,
        load_seconds,
        settled_after,
        unsettled,
        observer.errors,
        directory / "logs",
    )

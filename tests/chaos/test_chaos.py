"""The chaos suite: the same seeded traffic through a fault-free stack and through one where
services are killed, PostgreSQL drops connections and stops, and the broker comes back
empty; the chaos run must end as the reference does.

`make test` runs the short version (one fault of each kind, a few thousand interactions);
`make chaos` the full one (about 20,000 interactions of 2,000 people, several faults of each
kind), which plain `pytest` skips. The report is written to tests/artifacts/.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.definitions import load_definitions
from tests.chaos.compare import Rules, Sent, compared, invariants
from tests.chaos.faults import (
    BROKER_RESTART,
    DATABASE_STOP,
    DROP_CONNECTIONS,
    KILL_INGEST,
    KILL_ROUTER,
    KILL_SCORING,
    KINDS,
    PlannedFault,
    fault_schedule,
)
from tests.chaos.report import build_report, render, write_report
from tests.chaos.run import LIMITED_TEAM, RunResult, RunSettings, run_plan
from tests.chaos.stack import DEFINITIONS
from tests.chaos.workload import Plan, leads_of, make_plan

pytestmark = pytest.mark.chaos

SEED = int(os.environ.get("LEADFLOW_CHAOS_SEED", "20261127"))
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@dataclass(frozen=True)
class Scale:
    mode: str
    interactions: int
    people: int
    rate: float  # interactions per second, the same in both runs
    faults: dict[str, int]
    outage_seconds: float  # how long PostgreSQL is stopped
    recovery_within: float  # how long each fault's probe is followed
    wait_for_recovery: float  # how long a fault waits for the previous one's probe
    emea_capacity: int  # of each of the two emea reps: fewer than emea's hand-offs
    settle_within: float
    progress_every: float
    report: str


SHORT = Scale(
    "short",
    interactions=2_500,
    people=250,
    rate=125.0,
    faults=dict.fromkeys(KINDS, 1),
    outage_seconds=5.0,
    recovery_within=30.0,
    wait_for_recovery=5.0,
    emea_capacity=12,
    settle_within=45.0,
    progress_every=10.0,
    report="chaos-report-short.json",
)
FULL = Scale(
    "full",
    interactions=20_000,
    people=2_000,
    rate=100.0,
    faults={
        KILL_INGEST: 3,
        KILL_SCORING: 3,
        KILL_ROUTER: 3,
        DROP_CONNECTIONS: 3,
        BROKER_RESTART: 1,
        DATABASE_STOP: 1,
    },
    outage_seconds=30.0,
    recovery_within=90.0,
    wait_for_recovery=45.0,
    emea_capacity=100,
    settle_within=180.0,
    progress_every=10.0,
    report="chaos-report.json",
)


def say(line: str) -> None:
    print(line, file=sys.stdout, flush=True)


def what_was_sent(plan: Plan, result: RunResult) -> Sent:
    started = result.sender.started
    return Sent(
        {event_id: at - started for event_id, at in result.sender.accepted.items()},
        [(fault.injected_at, fault.kind) for fault in result.faults],
        leads_of(plan.events),
        result.sender.started_wall,
    )


def run_settings(scale: Scale, name: str, faults: list[PlannedFault]) -> RunSettings:
    return RunSettings(
        name,
        scale.rate,
        faults,
        outage_seconds=scale.outage_seconds,
        recovery_within=scale.recovery_within,
        wait_for_recovery=scale.wait_for_recovery,
        emea_capacity=scale.emea_capacity,
        settle_within=scale.settle_within,
        progress_every=scale.progress_every,
    )


async def chaos_suite(scale: Scale, directory: Path) -> None:
    plan = make_plan(SEED, scale.interactions, scale.people, datetime.now(UTC))
    window = len(plan.events) / scale.rate
    say(f"chaos suite ({scale.mode}): {len(plan.events):,} interactions at {scale.rate:g}/s")
    reference = await run_plan(
        plan, run_settings(scale, "reference", []), directory / "reference", say
    )
    # LEADFLOW_CHAOS_FAULTS=none: a second fault-free run, to see what differs without faults
    without_faults = os.environ.get("LEADFLOW_CHAOS_FAULTS") == "none"
    schedule = [] if without_faults else fault_schedule(SEED, scale.faults, window)
    chaos = await run_plan(plan, run_settings(scale, "chaos", schedule), directory / "chaos", say)
    rules = Rules.of(load_definitions(DEFINITIONS).definitions, frozenset({LIMITED_TEAM}))
    sent = {result.name: what_was_sent(plan, result) for result in (reference, chaos)}
    findings = (
        invariants("reference", reference.snapshot, sent["reference"], rules)
        + invariants("chaos", chaos.snapshot, sent["chaos"], rules)
        + compared(
            reference.snapshot, chaos.snapshot, rules, sent["chaos"].unstored(chaos.snapshot)
        )
    )
    report = build_report(plan, scale.mode, reference, chaos, findings)
    for result in (reference, chaos):  # pytest's own directories are soon cleaned up
        if result.logs is not None:
            kept = ARTIFACTS / f"chaos-{scale.mode}-logs" / result.name
            shutil.rmtree(kept, ignore_errors=True)
            shutil.copytree(result.logs, kept)
            report[result.name]["logs"] = str(kept)
    write_report(report, ARTIFACTS / scale.report)
    say(render(report))
    assert report["passed"], (
        f"the chaos run differs from the reference (the figures above): {report['findings']}; "
        f"report: {ARTIFACTS / scale.report}"
    )


async def test_short_chaos_run_ends_as_the_fault_free_run(tmp_path: Path) -> None:
    await chaos_suite(SHORT, tmp_path)


@pytest.mark.skipif(
    os.environ.get("LEADFLOW_CHAOS") != "full", reason="the full chaos run: `make chaos`"
)
async def test_full_chaos_run_ends_as_the_fault_free_run(tmp_path: Path) -> None:
    await chaos_suite(FULL, tmp_path)

"""The faults of a chaos run: when each is injected (seeded), how, and how long the system
takes to recover from it.

Right after each fault a probe (a demo request of a person of its own) is posted and
followed: the time until ingest answers 202 for it, until scoring has stored it, and until
the router has assigned the lead; and the time until scoring has stored everything
accepted before the fault (its backlog). Each is counted from the moment of the fault.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

from sqlalchemy import text

from tests.chaos.observe import TopicObserver, not_stored
from tests.chaos.stack import ChaosStack
from tests.chaos.workload import Sender, probe_event

KILL_INGEST, KILL_SCORING, KILL_ROUTER = "kill -9 ingest", "kill -9 scoring", "kill -9 router"
DROP_CONNECTIONS = "PostgreSQL connections terminated"
BROKER_RESTART = "broker restarted empty"
DATABASE_STOP = "PostgreSQL stopped"
KINDS = (KILL_INGEST, KILL_SCORING, KILL_ROUTER, DROP_CONNECTIONS, BROKER_RESTART, DATABASE_STOP)
POLL_SECONDS = 0.25
BACKLOG_POLL_SECONDS = 1.0
BACKLOG_GRACE_SECONDS = 5.0


@dataclass(frozen=True)
class PlannedFault:
    kind: str
    at: float  # seconds after the load started


def fault_schedule(seed: int, counts: dict[str, int], window: float) -> list[PlannedFault]:
    """`counts` faults of each kind in a seeded order, one in each equal slice of the first
    85% of `window` (at a seeded moment within its slice), so they do not bunch up."""
    rng = random.Random(f"faults:{seed}")
    kinds = [kind for kind in KINDS for _ in range(counts.get(kind, 0))]
    rng.shuffle(kinds)
    start, span = 0.05 * window, 0.8 * window
    return [
        PlannedFault(kind, round(start + span * (index + rng.uniform(0.1, 0.9)) / len(kinds), 2))
        for index, kind in enumerate(kinds)
    ]


@dataclass
class FaultRecord:
    """One injected fault: when (seconds after the load started), what it did, and the time
    from the fault until the probe was accepted, stored by scoring and assigned."""

    kind: str
    planned_at: float
    injected_at: float
    detail: str = ""
    probe: str = ""
    accepted_after: float | None = None
    scored_after: float | None = None
    assigned_after: float | None = None
    caught_up_after: float | None = None  # scoring stored all that was accepted before
    notes: list[str] = field(default_factory=list)
    followed: bool = False  # the probe's journey is over (arrived, or given up on)

    def summary(self) -> str:
        def seconds(value: float | None) -> str:
            if value is not None:
                return f"after {value:.1f}s"
            return "never" if self.followed else "not yet"

        return (
            f"{self.kind} at {self.injected_at:.1f}s ({self.detail or 'done'}): probe accepted "
            f"{seconds(self.accepted_after)}, scored {seconds(self.scored_after)}, "
            f"assigned {seconds(self.assigned_after)}; backlog stored "
            f"{seconds(self.caught_up_after)}"
        )


@dataclass
class FaultInjector:
    stack: ChaosStack
    observer: TopicObserver
    sender: Sender
    seed: int
    outage_seconds: float  # how long PostgreSQL stays stopped
    recovery_within: float  # how long a probe is followed
    wait_for_recovery: float  # how long the next fault waits for the previous probe
    records: list[FaultRecord] = field(default_factory=list)
    lost: set[str] = field(default_factory=set)  # accepted, and missing after a backlog
    _probes: list[asyncio.Task[None]] = field(default_factory=list)

    async def run(self, schedule: list[PlannedFault], started: float) -> None:
        """Inject each fault at its moment, once the previous probe got through (or after
        `wait_for_recovery`); then follow the probes to the end."""
        try:
            for planned in schedule:
                if self._probes:
                    await asyncio.wait([self._probes[-1]], timeout=self.wait_for_recovery)
                delay = started + planned.at - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                record = FaultRecord(planned.kind, planned.at, time.monotonic() - started)
                self.records.append(record)
                await self._inject(record, started)
            await asyncio.gather(*self._probes)
        finally:
            for probe in self._probes:
                probe.cancel()
            await asyncio.gather(*self._probes, return_exceptions=True)

    async def _inject(self, record: FaultRecord, started: float) -> None:
        fault_time = time.monotonic()
        kind = record.kind
        if kind in (KILL_INGEST, KILL_SCORING, KILL_ROUTER):
            self.stack.kill(kind.rpartition(" ")[2])
        elif kind == DROP_CONNECTIONS:
            record.detail = f"{await self.stack.terminate_connections()} sessions ended"
        elif kind == BROKER_RESTART:
            await self.observer.pause()
            fault_time = time.monotonic()
            record.injected_at = fault_time - started
            away = await asyncio.to_thread(self.stack.restart_broker)
            record.detail = f"away {away:.2f}s"
            self.observer.resume()
        elif kind == DATABASE_STOP:
            await asyncio.to_thread(self.stack.stop_database)
        self._probes.append(asyncio.create_task(self._follow_probe(record, fault_time)))
        if kind == DATABASE_STOP:
            await asyncio.sleep(self.outage_seconds)
            await self.stack.start_database()
            record.detail = f"stopped for {time.monotonic() - fault_time:.1f}s"

    async def _follow_probe(self, record: FaultRecord, fault_time: float) -> None:
        probe_done = asyncio.Event()
        try:
            await asyncio.gather(
                self._probe(record, fault_time, probe_done),
                self._backlog(record, fault_time, probe_done),
            )
        finally:
            record.followed = True

    async def _backlog(
        self, record: FaultRecord, fault_time: float, probe_done: asyncio.Event
    ) -> None:
        """How long until scoring stored everything accepted before the fault (its lag).

        Once the probe's journey is over, the rest of the backlog gets a few seconds more:
        what is still missing then is counted as lost (the checks at the end name it), and
        left out of the backlog of the faults after.
        """
        ids = [
            event_id
            for event_id, at in self.sender.accepted.items()
            if at <= fault_time and event_id not in self.lost
        ]
        missing, deadline = set(ids), fault_time + self.recovery_within
        while time.monotonic() < deadline:
            if probe_done.is_set():
                deadline = min(deadline, time.monotonic() + BACKLOG_GRACE_SECONDS)
            engine = self.stack.engine()
            try:
                missing = await not_stored(engine, ids)
            except Exception:  # the database may be down or restarting: look again
                pass
            finally:
                await engine.dispose()
            if not missing:
                record.caught_up_after = time.monotonic() - fault_time
                return
            await asyncio.sleep(BACKLOG_POLL_SECONDS)
        self.lost |= missing
        record.notes.append(
            f"{len(missing)} interactions accepted before it still not stored"
            f" {BACKLOG_GRACE_SECONDS:.0f}s after the probe"
        )

    async def _probe(self, record: FaultRecord, fault_time: float, done: asyncio.Event) -> None:
        try:
            await self._follow(record, fault_time)
        finally:
            done.set()

    async def _follow(self, record: FaultRecord, fault_time: float) -> None:
        number = len(self.records)
        event = probe_event(number, self.seed)
        record.probe = event["contact"]["email"]
        deadline = fault_time + self.recovery_within
        accepted = await self.sender.post_one(event, self.recovery_within)
        if accepted is None:
            record.notes.append("the probe was never accepted")
            return
        record.accepted_after = accepted - fault_time
        checks = {
            "scored_after": (
                "SELECT count(*) FROM scoring.interactions WHERE event_id = :key",
                event["id"],
            ),
            "assigned_after": (
                "SELECT count(*) FROM router.handoff_log h JOIN scoring.identities i"
                " ON i.lead_id = h.lead_id WHERE i.identity = :key AND h.kind = 'assigned'",
                f"email:{record.probe}",
            ),
        }
        for name, (query, key) in checks.items():
            while time.monotonic() < deadline:
                if await self._found(query, key):
                    setattr(record, name, time.monotonic() - fault_time)
                    break
                await asyncio.sleep(POLL_SECONDS)
            else:
                record.notes.append(f"{name}: not within {self.recovery_within:.0f}s")
                return

    async def _found(self, query: str, key: str) -> bool:
        engine = self.stack.engine()
        try:
            async with engine.connect() as connection:
                return bool(await connection.scalar(text(query), {"key": key}))
        except Exception:  # the database may be down or restarting: look again
            return False
        finally:
            await engine.dispose()

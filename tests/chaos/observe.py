"""What the harness sees of a run: the lifecycle and hand-off topics read as they are written,
and, at the end, the state each service keeps (its tables and its API).

A broker restart empties the topics, so they are watched from the start of the run by an
independent consumer (no group, no commits). It is paused before the harness stops the
broker and attached again only once the services have created the topics anew: a consumer
assigned to a topic that does not exist would make the broker create it, which is the
services' job. Events written while it was paused are found in the services' outbox.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.events import LOG_STARTED_TYPE
from shared.topics import HANDOFFS, LIFECYCLE
from tests.chaos.stack import ADMIN_KEY

log = logging.getLogger(__name__)
WATCHED = (LIFECYCLE.name, HANDOFFS.name)
METADATA_EVERY_SECONDS = 1.0


@dataclass
class TopicObserver:
    """Every envelope seen on the watched topics, by id (the first copy), and repeats."""

    bootstrap: str
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    repeats: Counter[str] = field(default_factory=Counter)  # id -> copies after the first
    errors: list[str] = field(default_factory=list)
    last_record_at: float = 0.0
    _allowed: asyncio.Event = field(default_factory=asyncio.Event)
    _idle: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, stopping: asyncio.Event) -> None:
        self._allowed.set()
        while not stopping.is_set():
            self._idle.set()
            await _first(self._allowed.wait(), stopping.wait())
            if stopping.is_set():
                return
            self._idle.clear()
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap,
                enable_auto_commit=False,
                group_id=None,
                auto_offset_reset="earliest",
                fetch_max_wait_ms=100,
            )
            try:
                await consumer.start()
                await self._read(consumer, stopping)
            except (KafkaError, OSError) as error:
                self.errors.append(repr(error))
                with suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), 0.5)
            finally:
                await consumer.stop()
        self._idle.set()

    async def _read(self, consumer: AIOKafkaConsumer, stopping: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        positions: dict[TopicPartition, int] = {}
        next_look = 0.0
        while self._allowed.is_set() and not stopping.is_set():
            if loop.time() >= next_look:
                next_look = loop.time() + METADATA_EVERY_SECONDS
                await self._attach_new_partitions(consumer, positions)
            if not positions:
                await asyncio.sleep(0.2)
                continue
            batches = await consumer.getmany(timeout_ms=200, max_records=2_000)
            for partition, records in batches.items():
                for record in records:
                    positions[partition] = record.offset + 1
                    self._seen(json.loads(record.value))
                    self.last_record_at = loop.time()

    async def _attach_new_partitions(
        self, consumer: AIOKafkaConsumer, positions: dict[TopicPartition, int]
    ) -> None:
        # Metadata of all topics creates none (asking for a named one may); aiokafka answers
        # it with partitions only from its client.
        cluster = await consumer._client.fetch_all_metadata()
        found = {
            TopicPartition(topic, partition)
            for topic in WATCHED
            for partition in cluster.partitions_for_topic(topic) or ()
        }
        new = found - set(positions)
        if not new:
            return
        consumer.assign(sorted(found))
        for partition in found:
            if partition in new:
                positions[partition] = 0
            consumer.seek(partition, positions[partition])

    def _seen(self, envelope: dict[str, Any]) -> None:
        if envelope.get("type") == LOG_STARTED_TYPE:
            return
        if envelope["id"] in self.events:
            self.repeats[envelope["id"]] += 1
        else:
            self.events[envelope["id"]] = envelope

    async def pause(self) -> None:
        """Stop reading (the consumer is stopped when this returns); `resume` starts over."""
        self._allowed.clear()
        await self._idle.wait()

    def resume(self) -> None:
        self._allowed.set()

    async def quiet(self, seconds: float, within: float) -> bool:
        """Wait until nothing new arrived for `seconds` (at most `within`)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while loop.time() < deadline:
            if loop.time() - self.last_record_at >= seconds:
                return True
            await asyncio.sleep(0.2)
        return False


async def _first(*waits: Any) -> None:
    tasks = [asyncio.ensure_future(wait) for wait in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# --- state at the end of a run --------------------------------------------------------------


@dataclass(frozen=True)
class LeadState:
    """A lead as scoring stored it."""

    lead_id: str
    email: str | None
    stage: str | None
    score: float
    grade: str | None


@dataclass(frozen=True)
class RoutedLead:
    """A lead as the router holds it."""

    status: str
    team: str | None
    rep_id: str | None


@dataclass(frozen=True)
class RepLoad:
    name: str
    team: str
    capacity: int
    open_leads: int


@dataclass
class Snapshot:
    """The end state of one run, each lead under its identity (`email:…`, else `anon:…`)."""

    leads: dict[str, LeadState] = field(default_factory=dict)
    key_of: dict[str, str] = field(default_factory=dict)  # lead id -> identity key
    routed: dict[str, RoutedLead] = field(default_factory=dict)
    stored_ids: set[str] = field(default_factory=set)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> envelope
    only_in_outbox: int = 0  # events never seen on the topics (written while paused, lost)
    topic_repeats: int = 0  # the same event id seen again on a topic
    reps: list[RepLoad] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # what could not be read

    def key(self, lead_id: str) -> str:
        return self.key_of.get(lead_id, f"lead:{lead_id}")


async def _rows(engine: AsyncEngine, query: str, **parameters: Any) -> Sequence[Any]:
    async with engine.connect() as connection:
        return (await connection.execute(text(query), parameters)).all()


async def _scoring_state(engine: AsyncEngine, snapshot: Snapshot) -> None:
    identities = await _rows(engine, "SELECT identity, lead_id FROM scoring.identities")
    keys: dict[str, list[str]] = {}
    for identity, lead_id in identities:
        keys.setdefault(str(lead_id), []).append(identity)
    for lead_id, names in keys.items():
        emails = sorted(name for name in names if name.startswith("email:"))
        snapshot.key_of[lead_id] = (emails or sorted(names))[0]
    for row in await _rows(engine, "SELECT id, email, stage, score, grade FROM scoring.leads"):
        lead = LeadState(str(row.id), row.email, row.stage, float(row.score), row.grade)
        snapshot.leads[snapshot.key(lead.lead_id)] = lead
    stored = await _rows(engine, "SELECT event_id FROM scoring.interactions")
    snapshot.stored_ids = {row.event_id for row in stored}


async def _router_state(engine: AsyncEngine, snapshot: Snapshot) -> None:
    for row in await _rows(engine, "SELECT id, status, team, rep_id FROM router.leads"):
        rep = str(row.rep_id) if row.rep_id else None
        snapshot.routed[snapshot.key(str(row.id))] = RoutedLead(row.status, row.team, rep)


async def _emitted(engine: AsyncEngine, snapshot: Snapshot) -> dict[str, dict[str, Any]]:
    """Every event the services wrote for the watched topics (outbox and hand-off log)."""
    found: dict[str, dict[str, Any]] = {}
    for schema in ("scoring", "router"):
        query = f"SELECT value FROM {schema}.outbox WHERE topic IN :topics"
        try:
            async with engine.connect() as connection:
                rows = await connection.execute(
                    text(query).bindparams(bindparam("topics", expanding=True)),
                    {"topics": list(WATCHED)},
                )
                for row in rows:
                    envelope = json.loads(bytes(row.value))
                    found.setdefault(envelope["id"], envelope)
        except Exception as error:
            snapshot.problems.append(f"{schema}.outbox not readable: {error!r}")
    try:
        for row in await _rows(engine, "SELECT envelope FROM router.handoff_log"):
            found.setdefault(row.envelope["id"], row.envelope)
    except Exception as error:
        snapshot.problems.append(f"router.handoff_log not readable: {error!r}")
    return found


async def _reps(router_url: str, snapshot: Snapshot) -> None:
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            answer = await client.get(
                f"{router_url}/v1/reps", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
            )
            answer.raise_for_status()
    except httpx.HTTPError as error:
        snapshot.problems.append(f"GET /v1/reps failed at the end: {error!r}")
        return
    snapshot.reps = [
        RepLoad(rep["name"], rep["team"], rep["capacity"], rep["open_leads"])
        for rep in answer.json()
    ]


async def take_snapshot(engine: AsyncEngine, router_url: str, observer: TopicObserver) -> Snapshot:
    snapshot = Snapshot()
    await _scoring_state(engine, snapshot)
    await _router_state(engine, snapshot)
    await _reps(router_url, snapshot)
    stored = await _emitted(engine, snapshot)
    snapshot.events = dict(observer.events)
    snapshot.only_in_outbox = len(set(stored) - set(observer.events))
    for event_id, envelope in stored.items():
        snapshot.events.setdefault(event_id, envelope)
    snapshot.topic_repeats = sum(observer.repeats.values())
    return snapshot


# --- is the run over? ------------------------------------------------------------------------


async def not_stored(engine: AsyncEngine, ids: list[str]) -> set[str]:
    """Those of `ids` that scoring has not stored."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT id FROM unnest(CAST(:ids AS text[])) AS id WHERE NOT EXISTS"
                " (SELECT 1 FROM scoring.interactions i WHERE i.event_id = id)"
            ),
            {"ids": ids},
        )
        return {row.id for row in rows}


async def fingerprint(engine: AsyncEngine) -> tuple[Any, ...]:
    """What changes while the services still work: unsent events, leads' stages and scores,
    the router's statuses, and how many events each service has written."""
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                text(
                    "SELECT (SELECT count(*) FROM scoring.outbox WHERE sent_at IS NULL),"
                    " (SELECT count(*) FROM router.outbox WHERE sent_at IS NULL),"
                    " (SELECT count(*) FROM scoring.outbox), (SELECT count(*) FROM router.outbox),"
                    " (SELECT count(*) FROM scoring.interactions),"
                    " (SELECT string_agg(stage || ':' || n, ',' ORDER BY stage) FROM"
                    "   (SELECT coalesce(stage, '-') AS stage, count(*) AS n FROM scoring.leads"
                    "    GROUP BY 1) s),"
                    " (SELECT round(sum(score)::numeric, 0) FROM scoring.leads),"
                    " (SELECT string_agg(status || ':' || n, ',' ORDER BY status) FROM"
                    "   (SELECT status, count(*) AS n FROM router.leads GROUP BY 1) r)"
                )
            )
        ).one()
    return tuple(row)

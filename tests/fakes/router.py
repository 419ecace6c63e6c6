"""The router's storage in dictionaries: the same ports as PostgreSQL, for unit tests.

A unit of work works on a copy of the data and keeps it only on commit, so that what a
refused action did before it was refused is gone, as after a rollback.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator, Collection, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from services.router.domain import OPEN, Lead, LeadStatus, Rep, Roster
from services.router.domain.notices import NoticeRequest
from shared.events import (
    HandoffRecorded,
    LeadProfile,
    LeadStageChanged,
    LifecycleRecorded,
    SalesActionRecorded,
)
from tests.fakes.store import CommittedData, FakeStore, FakeTransaction

# What the `reps` table defaults to.
REP_DEFAULTS: dict[str, Any] = {
    "weight": 1.0,
    "active": True,
    "out_of_office_until": None,
    "timezone": "UTC",
    "work_start_hour": 0,
    "work_end_hour": 24,
    "work_days": (0, 1, 2, 3, 4, 5, 6),
    "assigned_total": 0,
    "last_turn": None,
}
REP_FIELDS = [f.name for f in fields(Rep) if f.name != "open_leads"]


@dataclass
class RouterData(CommittedData):
    leads: dict[str, Lead] = field(default_factory=dict)
    reps: dict[str, dict[str, Any]] = field(default_factory=dict)
    account_owners: dict[str, str] = field(default_factory=dict)
    timers: dict[str, datetime] = field(default_factory=dict)
    turns: int = 0
    processed: set[str] = field(default_factory=set)
    stage_changes: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    handoffs: list[HandoffRecorded] = field(default_factory=list)
    sales_actions: list[SalesActionRecorded] = field(default_factory=list)
    notices: dict[str, NoticeRequest] = field(default_factory=dict)


def _rep(data: RouterData, row: Mapping[str, Any]) -> Rep:
    open_leads = sum(
        1 for lead in data.leads.values() if lead.rep_id == row["id"] and lead.status in OPEN
    )
    values = {name: row[name] for name in REP_FIELDS}
    return Rep(**{**values, "work_days": tuple(row["work_days"])}, open_leads=open_leads)


class FakeLeads:
    def __init__(self, data: RouterData) -> None:
        self._data = data

    async def get_for_update(self, lead_id: str) -> Lead | None:
        return copy.deepcopy(self._data.leads.get(lead_id))

    async def lock(self, lead_ids: Collection[str]) -> dict[str, Lead]:
        return {
            lead_id: copy.deepcopy(self._data.leads[lead_id])
            for lead_id in sorted(lead_ids)
            if lead_id in self._data.leads
        }

    async def save(self, lead: Lead) -> None:
        self._data.leads[lead.id] = copy.deepcopy(lead)

    async def queued(self, limit: int) -> list[Lead]:
        with_room = [
            rep
            for rep in (_rep(self._data, row) for row in self._data.reps.values())
            if rep.active and rep.open_leads < rep.capacity
        ]
        teams = {rep.team for rep in with_room}
        owners = {rep.id for rep in with_room}
        waiting = [
            lead
            for lead in self._data.leads.values()
            if lead.status == LeadStatus.QUEUED
            and (
                lead.team in teams
                or self._data.account_owners.get(lead.account_domain or "") in owners
            )
        ]
        waiting.sort(key=lambda lead: lead.queued_at or datetime.min)
        return copy.deepcopy(waiting[:limit])

    async def overdue(self, now: datetime, limit: int) -> list[Lead]:
        due = sorted((at, lead_id) for lead_id, at in self._data.timers.items() if at <= now)
        return [copy.deepcopy(self._data.leads[lead_id]) for _, lead_id in due[:limit]]

    async def open_leads_of(self, rep_id: str) -> list[Lead]:
        return copy.deepcopy(
            [
                lead
                for lead in self._data.leads.values()
                if lead.rep_id == rep_id and lead.status in OPEN
            ]
        )


class FakeReps:
    def __init__(self, data: RouterData) -> None:
        self._data = data

    async def lock_for_routing(
        self, teams: Collection[str], domains: Collection[str], rep_ids: Collection[str]
    ) -> Roster:
        known = self._data.account_owners
        owners = {domain: known[domain] for domain in domains if domain in known}
        wanted = set(rep_ids) | set(owners.values())
        rows = [
            row for row in self._data.reps.values() if row["team"] in teams or row["id"] in wanted
        ]
        return Roster.of((_rep(self._data, row) for row in rows), owners)

    async def took(self, rep_id: str, unowned_domain: str | None) -> None:
        self._data.turns += 1
        row = self._data.reps[rep_id]
        row["assigned_total"] += 1
        row["last_turn"] = self._data.turns
        if unowned_domain:
            self._data.account_owners.setdefault(unowned_domain, rep_id)

    async def add(self, rep_id: str, token_hash: str, fields: Mapping[str, Any]) -> None:
        self._data.reps[rep_id] = {
            **REP_DEFAULTS,
            **fields,
            "id": rep_id,
            "token_hash": token_hash,
        }

    async def change(self, rep_id: str, fields: Mapping[str, Any]) -> bool:
        if rep_id not in self._data.reps:
            return False
        self._data.reps[rep_id].update(fields)
        return True


class FakeSlaTimers:
    def __init__(self, data: RouterData) -> None:
        self._data = data

    async def set(self, lead_id: str, due: datetime | None) -> None:
        self._data.timers.pop(lead_id, None)
        if due is not None:
            self._data.timers[lead_id] = due


class FakeHistory:
    def __init__(self, data: RouterData) -> None:
        self._data = data

    async def first_time(self, event_ids: Iterable[str]) -> set[str]:
        new = set(event_ids) - self._data.processed
        self._data.processed |= new
        return new

    async def record_stage_changes(self, rows: Sequence[Mapping[str, Any]]) -> None:
        for row in rows:
            self._data.stage_changes.setdefault(row["event_id"], row)

    async def log_handoff(self, envelope: HandoffRecorded) -> None:
        self._data.handoffs.append(envelope)

    async def record_sales_action(self, envelope: SalesActionRecorded) -> None:
        self._data.sales_actions.append(envelope)


class FakeNotices:
    def __init__(self, data: RouterData) -> None:
        self._data = data

    async def plan(self, requests: Sequence[NoticeRequest]) -> None:
        for request in requests:
            self._data.notices.setdefault(request.dedupe_key, request)


class FakeUnitOfWork(FakeTransaction[RouterData]):
    def __init__(self, store: FakeStore[RouterData]) -> None:
        super().__init__(store)
        self.leads = FakeLeads(self.data)
        self.reps = FakeReps(self.data)
        self.timers = FakeSlaTimers(self.data)
        self.history = FakeHistory(self.data)
        self.notices = FakeNotices(self.data)


@dataclass
class FakeRouterStore(FakeStore[RouterData]):
    """What the router keeps, committed; `unit_of_work` is the factory services take."""

    data: RouterData = field(default_factory=RouterData)

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[FakeUnitOfWork]:
        yield FakeUnitOfWork(self)

    def handoff_kinds(self, lead_id: str) -> list[str]:
        return [e.data.kind for e in self.data.handoffs if e.data.lead_id == lead_id]


def hand_off_event(
    lead_id: str, profile: LeadProfile, at: datetime, event_id: str | None = None
) -> LifecycleRecorded:
    """What scoring sends when a lead becomes sales-ready (grade A: accept within an hour)."""
    return LifecycleRecorded(
        id=event_id or str(uuid.uuid4()),
        source="/scoring",
        type="leadflow.lead.stage_changed",
        time=at,
        subject=lead_id,
        definitions_version="test",
        data=LeadStageChanged(
            lead_id=lead_id,
            from_stage="mql",
            to_stage="sql",
            is_hand_off=True,
            reason="criteria",
            score=120.0,
            grade="A",
            occurred_at=at,
            caused_by=None,
            profile=profile,
        ),
    )

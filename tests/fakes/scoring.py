"""Scoring's storage in dictionaries: the same ports as PostgreSQL, for unit tests.

A unit of work works on a copy of the data and keeps it only on commit, as a transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from services.scoring.domain import Return, StoredInteraction, StoredLead
from services.scoring.domain.shadow import ShadowLead, ShadowRun, Verdict
from services.scoring.records import interaction_as_stored
from tests.fakes.store import CommittedData, FakeStore, FakeTransaction


@dataclass
class ScoringData(CommittedData):
    identities: dict[str, str] = field(default_factory=dict)
    # Lead rows as `records.lead_row` builds them; a lead only added has the table defaults.
    leads: dict[str, dict[str, Any]] = field(default_factory=dict)
    interactions: dict[str, tuple[str, StoredInteraction]] = field(default_factory=dict)
    returns: dict[str, tuple[str, Return]] = field(default_factory=dict)
    timers: dict[str, datetime] = field(default_factory=dict)
    # run id -> (run, document, frozen report)
    shadow_runs: dict[str, tuple[ShadowRun, str, Mapping[str, Any] | None]] = field(
        default_factory=dict
    )
    shadow_leads: dict[tuple[str, str], ShadowLead] = field(default_factory=dict)
    verdicts: dict[str, Mapping[str, Any]] = field(default_factory=dict)


T = TypeVar("T")


def _add_new(
    stored: dict[str, tuple[str, T]],
    rows: Sequence[Mapping[str, Any]],
    read: Callable[[Mapping[str, Any]], T],
) -> list[Mapping[str, Any]]:
    """Store the rows whose event id is new (the first of a batch wins); answer those."""
    new = []
    for row in rows:
        if row["event_id"] not in stored:
            stored[row["event_id"]] = (row["lead_id"], read(row))
            new.append(row)
    return new


def _grouped(items: Iterable[tuple[str, Any]], lead_ids: Iterable[str]) -> dict[str, list[Any]]:
    wanted = set(lead_ids)
    by_lead: dict[str, list[Any]] = defaultdict(list)
    for lead_id, item in items:
        if lead_id in wanted:
            by_lead[lead_id].append(item)
    return by_lead


class _OnData:
    def __init__(self, data: ScoringData) -> None:
        self._data = data


class FakeIdentities(_OnData):
    async def lock(self, keys: Iterable[str]) -> None:
        return None

    async def known(self, keys: Iterable[str]) -> dict[str, str]:
        return {key: self._data.identities[key] for key in keys if key in self._data.identities}

    async def add(self, lead_of: Mapping[str, str]) -> None:
        self._data.identities.update(lead_of)


class FakeLeads(_OnData):
    async def add(self, lead_ids: Iterable[str]) -> None:
        for lead_id in lead_ids:
            self._data.leads.setdefault(
                lead_id, {"id": lead_id, "stage": None, "thresholds_met": [], "reported_stages": []}
            )

    async def merge(self, merged_into: Mapping[str, str]) -> None:
        data = self._data
        for absorbed, survivor in merged_into.items():
            for key, lead_id in data.identities.items():
                if lead_id == absorbed:
                    data.identities[key] = survivor
            for event_id, (lead_id, interaction) in data.interactions.items():
                if lead_id == absorbed:
                    data.interactions[event_id] = (survivor, interaction)
            data.timers.pop(absorbed, None)
            for run_and_lead in [key for key in data.shadow_leads if key[1] == absorbed]:
                del data.shadow_leads[run_and_lead]
            data.leads.pop(absorbed, None)

    async def stored(self, lead_ids: Iterable[str]) -> dict[str, StoredLead]:
        rows = [self._data.leads[lead_id] for lead_id in lead_ids if lead_id in self._data.leads]
        return {
            row["id"]: StoredLead(
                row["id"],
                row["stage"],
                frozenset(row["thresholds_met"]),
                frozenset(row["reported_stages"]) if row["reported_stages"] is not None else None,
                row.get("interaction_count", 0),
                row.get("timeline_state"),
                row.get("definitions_version"),
            )
            for row in rows
        }

    async def save(self, rows: Sequence[Mapping[str, Any]]) -> None:
        for row in rows:
            self._data.leads[row["id"]] = dict(row)

    async def ids_after(self, after: str | None, limit: int) -> list[str]:
        return sorted(lead_id for lead_id in self._data.leads if after is None or lead_id > after)[
            :limit
        ]


class FakeInteractions(_OnData):
    async def add(self, rows: Sequence[Mapping[str, Any]]) -> set[str]:
        new = _add_new(self._data.interactions, rows, interaction_as_stored)
        return {row["event_id"] for row in new}

    async def histories(self, lead_ids: Iterable[str]) -> dict[str, list[StoredInteraction]]:
        return _grouped(self._data.interactions.values(), lead_ids)


def _return(row: Mapping[str, Any]) -> Return:
    eligible = row["eligible_again_at"]
    return Return(
        row["event_id"],
        row["returned_at"].timestamp(),
        row["stage"],
        row["resets_score"],
        eligible.timestamp() if eligible else None,
    )


class FakeReturns(_OnData):
    async def add(self, rows: Sequence[Mapping[str, Any]]) -> set[str]:
        return {row["lead_id"] for row in _add_new(self._data.returns, rows, _return)}

    async def of(self, lead_ids: Iterable[str]) -> dict[str, list[Return]]:
        return _grouped(self._data.returns.values(), lead_ids)


class FakeDecayTimers(_OnData):
    async def set(self, due: Mapping[str, datetime | None]) -> None:
        for lead_id, at in due.items():
            self._data.timers.pop(lead_id, None)
            if at is not None:
                self._data.timers[lead_id] = at

    async def claim_due(self, now: datetime, limit: int) -> list[str]:
        due = sorted((at, lead_id) for lead_id, at in self._data.timers.items() if at <= now)
        return [lead_id for _, lead_id in due[:limit]]


class FakeShadowRuns(_OnData):
    async def running(self) -> tuple[ShadowRun, str] | None:
        return next(
            (
                (run, document)
                for run, document, _ in self._data.shadow_runs.values()
                if run.stopped_at is None
            ),
            None,
        )

    async def find(self, run_id: str | None, *, lock: bool = False) -> ShadowRun | None:
        runs = sorted(
            (run for run, _, _ in self._data.shadow_runs.values()),
            key=lambda run: run.started_at,
            reverse=True,
        )
        return next((run for run in runs if run_id in (None, run.id)), None)

    async def document(self, run_id: str) -> str:
        return self._data.shadow_runs[run_id][1]

    async def frozen_report(self, run_id: str) -> dict[str, Any] | None:
        report = self._data.shadow_runs[run_id][2]
        return None if report is None else dict(report)

    async def start(self, run: ShadowRun, document: str) -> bool:
        if await self.running() is not None:
            return False
        self._data.shadow_runs[run.id] = (run, document, None)
        return True

    async def finish(
        self, run_id: str, at: datetime, report: Mapping[str, Any], *, promoted: bool
    ) -> None:
        run, document, _ = self._data.shadow_runs[run_id]
        ended: dict[str, Any] = {"stopped_at": run.stopped_at or at}
        if promoted:
            ended["promoted_at"] = at
        self._data.shadow_runs[run_id] = (run.model_copy(update=ended), document, report)

    async def history(self, limit: int) -> list[ShadowRun]:
        runs = [run for run, _, _ in self._data.shadow_runs.values()]
        return sorted(runs, key=lambda run: run.started_at, reverse=True)[:limit]

    async def record(self, run_id: str, leads: Sequence[ShadowLead], at: datetime) -> None:
        for lead in leads:
            self._data.shadow_leads[run_id, lead.lead_id] = lead

    async def leads(self, run_id: str) -> list[ShadowLead]:
        return [lead for (run, _), lead in self._data.shadow_leads.items() if run == run_id]


class FakeSalesVerdicts(_OnData):
    async def add(self, rows: Sequence[Mapping[str, Any]]) -> None:
        for row in rows:
            kept = self._data.verdicts.get(row["lead_id"])
            if kept is None or row["at"] >= kept["at"]:
                self._data.verdicts[row["lead_id"]] = row

    async def of_run(self, run_id: str) -> dict[str, Verdict]:
        return {
            lead_id: row["verdict"]
            for lead_id, row in self._data.verdicts.items()
            if (run_id, lead_id) in self._data.shadow_leads
        }


class FakeUnitOfWork(FakeTransaction[ScoringData]):
    def __init__(self, store: FakeStore[ScoringData]) -> None:
        super().__init__(store)
        self.identities = FakeIdentities(self.data)
        self.leads = FakeLeads(self.data)
        self.interactions = FakeInteractions(self.data)
        self.returns = FakeReturns(self.data)
        self.timers = FakeDecayTimers(self.data)
        self.shadow_runs = FakeShadowRuns(self.data)
        self.verdicts = FakeSalesVerdicts(self.data)


@dataclass
class FakeScoringStore(FakeStore[ScoringData]):
    """What scoring keeps, committed; `unit_of_work` is the factory the service takes."""

    data: ScoringData = field(default_factory=ScoringData)

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[FakeUnitOfWork]:
        yield FakeUnitOfWork(self)

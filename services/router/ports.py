"""What the router's service layer needs from storage: PostgreSQL in production
(`repository`, `unit_of_work`), dictionaries in the unit tests (`tests/fakes/router.py`)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol

from services.router.domain import Lead, Roster
from services.router.domain.notices import NoticeRequest
from shared.events import HandoffRecorded, SalesActionRecorded
from shared.unit_of_work import Outbox, Transaction


class Leads(Protocol):
    async def get_for_update(self, lead_id: str) -> Lead | None: ...

    async def lock(self, lead_ids: Collection[str]) -> dict[str, Lead]:
        """Those of these leads the router has, locked."""
        ...

    async def save(self, lead: Lead) -> None: ...

    async def queued(self, limit: int) -> list[Lead]:
        """Leads waiting for a rep, oldest first, that an active rep with room may take (one
        of their team, or their account's owner); locked, another router skips those taken."""
        ...

    async def overdue(self, now: datetime, limit: int) -> list[Lead]:
        """Leads whose follow-up is due, locked; another router skips those taken."""
        ...

    async def open_leads_of(self, rep_id: str) -> list[Lead]:
        """The rep's open leads, locked, the one whose SLA ends first first."""
        ...


class Reps(Protocol):
    async def lock_for_routing(
        self, teams: Collection[str], domains: Collection[str], rep_ids: Collection[str]
    ) -> Roster:
        """These accounts, the teams' rotations and reps, the reps with these ids and the
        owners of these accounts, locked (at most once a transaction), with their open
        leads."""
        ...

    async def took(self, rep_id: str, unowned_domain: str | None) -> None:
        """The rep got a lead at the next turn of the rotation (and its account, when
        nobody owns it)."""
        ...

    async def add(self, rep_id: str, token_hash: str, fields: Mapping[str, Any]) -> None: ...

    async def change(self, rep_id: str, fields: Mapping[str, Any]) -> bool:
        """Answers whether the rep exists."""
        ...


class SlaTimers(Protocol):
    async def set(self, lead_id: str, due: datetime | None) -> None:
        """The lead's follow-up is due then (None: no follow-up)."""
        ...


class History(Protocol):
    """What happened, kept for the stream and the reports."""

    async def first_time(self, event_ids: Iterable[str]) -> set[str]:
        """Record these consumed event ids; answer those not seen before."""
        ...

    async def record_stage_changes(self, rows: Sequence[Mapping[str, Any]]) -> None: ...

    async def log_handoff(self, envelope: HandoffRecorded) -> None: ...

    async def record_sales_action(self, envelope: SalesActionRecorded) -> None: ...


class Notices(Protocol):
    async def plan(self, requests: Sequence[NoticeRequest]) -> None:
        """Keep these to be sent when due, after the commit; one kept before is kept once."""
        ...


class UnitOfWork(Transaction, Protocol):
    """One routing transaction: it locks leads, then teams' rotations, then reps."""

    @property
    def leads(self) -> Leads: ...

    @property
    def reps(self) -> Reps: ...

    @property
    def timers(self) -> SlaTimers: ...

    @property
    def history(self) -> History: ...

    @property
    def notices(self) -> Notices: ...

    @property
    def outbox(self) -> Outbox: ...


# Opens a routing transaction; what it gives is the unit of work of that transaction.
UnitsOfWork = Callable[[], AbstractAsyncContextManager[UnitOfWork]]

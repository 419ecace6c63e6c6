"""What the router's service layer needs from storage: PostgreSQL in production
(`repository`, `unit_of_work`), dictionaries in the unit tests (`tests/fakes/router.py`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol

from services.router.domain import Lead, Rep
from services.router.domain.notices import NoticeRequest
from shared.events import HandoffRecorded, SalesActionRecorded
from shared.unit_of_work import Outbox, Transaction


class Leads(Protocol):
    async def get_for_update(self, lead_id: str) -> Lead | None: ...

    async def save(self, lead: Lead) -> None: ...

    async def queued(self, limit: int) -> list[Lead]:
        """Leads waiting for a rep, oldest first; another router skips those taken."""
        ...

    async def open_leads_of(self, rep_id: str) -> list[Lead]: ...


class Reps(Protocol):
    async def of_team(self, team: str, account_owner: str | None) -> list[Rep]:
        """The team's reps and the account owner, with their open leads, locked."""
        ...

    async def mark_assigned(self, rep_id: str, at: datetime) -> None: ...

    async def add(self, rep_id: str, token_hash: str, fields: Mapping[str, Any]) -> None: ...

    async def change(self, rep_id: str, fields: Mapping[str, Any]) -> bool:
        """Answers whether the rep exists."""
        ...

    async def account_owner(self, domain: str | None) -> str | None: ...

    async def claim_account(self, domain: str | None, rep_id: str) -> None:
        """The rep owns the account, unless someone already does."""
        ...


class SlaTimers(Protocol):
    async def set(self, lead_id: str, due: datetime | None) -> None:
        """The lead's follow-up is due then (None: no follow-up)."""
        ...

    async def claim_due(self, now: datetime, limit: int) -> list[str]:
        """Lead ids whose follow-up is due, locked; another router skips them."""
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
    """One routing transaction: at most one at a time may move leads between reps."""

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

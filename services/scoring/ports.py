"""What scoring's service layer needs from storage: PostgreSQL in production (`repository`,
`unit_of_work`), dictionaries in the unit tests (`tests/fakes/scoring.py`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol

from services.scoring.domain import Return, StoredInteraction, StoredLead
from services.scoring.domain.shadow import ShadowLead, ShadowRun, Verdict
from shared.unit_of_work import Outbox, Transaction


class Identities(Protocol):
    """Which lead each email or anonymous id belongs to."""

    async def lock(self, keys: Iterable[str]) -> None:
        """Serialise transactions that touch the same people (in a fixed order: no deadlocks)."""
        ...

    async def known(self, keys: Iterable[str]) -> dict[str, str]:
        """identity -> lead id, for the identities already known."""
        ...

    async def add(self, lead_of: Mapping[str, str]) -> None: ...


class Leads(Protocol):
    async def add(self, lead_ids: Iterable[str]) -> None: ...

    async def merge(self, merged_into: Mapping[str, str]) -> None:
        """Move every identity and interaction of an absorbed lead to the lead it joined."""
        ...

    async def stored(self, lead_ids: Iterable[str]) -> dict[str, StoredLead]:
        """The leads as last stored, locked until the transaction ends."""
        ...

    async def save(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Lead states: rows of `records.lead_row`."""
        ...

    async def ids_after(self, after: str | None, limit: int) -> list[str]:
        """The next `limit` lead ids after `after`, in id order."""
        ...


class Interactions(Protocol):
    async def add(self, rows: Sequence[Mapping[str, Any]]) -> set[str]:
        """Store rows of `records.interaction_row` not seen before; answer the new event ids."""
        ...

    async def histories(self, lead_ids: Iterable[str]) -> dict[str, list[StoredInteraction]]:
        """Every stored interaction of these leads."""
        ...


class Returns(Protocol):
    """The leads sales sent back to marketing nurture."""

    async def add(self, rows: Sequence[Mapping[str, Any]]) -> set[str]:
        """Store rows of `records.return_row` not seen before; answer the leads they concern."""
        ...

    async def of(self, lead_ids: Iterable[str]) -> dict[str, list[Return]]: ...


class DecayTimers(Protocol):
    async def set(self, due: Mapping[str, datetime | None]) -> None:
        """One timer per lead: when it must be scored again (None: never)."""
        ...

    async def claim_due(self, now: datetime, limit: int) -> list[str]:
        """Lead ids whose timer is due, locked; another instance skips them."""
        ...


class ShadowRuns(Protocol):
    """Candidate definitions scored beside the active ones, and what each side decided."""

    async def running(self) -> tuple[ShadowRun, str] | None:
        """The run going on, with its candidate document."""
        ...

    async def find(self, run_id: str | None, *, lock: bool = False) -> ShadowRun | None:
        """The run `run_id`, else the latest one started."""
        ...

    async def document(self, run_id: str) -> str: ...

    async def frozen_report(self, run_id: str) -> dict[str, Any] | None: ...

    async def start(self, run: ShadowRun, document: str) -> bool:
        """Store a new run; False (nothing stored) when another one is going on."""
        ...

    async def finish(
        self, run_id: str, at: datetime, report: Mapping[str, Any], *, promoted: bool
    ) -> None:
        """Stop the run (if it was going on) and keep its report; promoted: say when."""
        ...

    async def history(self, limit: int) -> list[ShadowRun]: ...

    async def record(self, run_id: str, leads: Sequence[ShadowLead], at: datetime) -> None: ...

    async def leads(self, run_id: str) -> list[ShadowLead]: ...


class SalesVerdicts(Protocol):
    async def add(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Rows of `records.verdict_row`; a lead keeps its latest verdict."""
        ...

    async def of_run(self, run_id: str) -> dict[str, Verdict]:
        """The verdict on each lead the run evaluated that sales judged."""
        ...


class UnitOfWork(Transaction, Protocol):
    """One scoring transaction: what it changes, the events it emits and the consumed
    offsets are committed together or not at all."""

    @property
    def identities(self) -> Identities: ...

    @property
    def leads(self) -> Leads: ...

    @property
    def interactions(self) -> Interactions: ...

    @property
    def returns(self) -> Returns: ...

    @property
    def timers(self) -> DecayTimers: ...

    @property
    def shadow_runs(self) -> ShadowRuns: ...

    @property
    def verdicts(self) -> SalesVerdicts: ...

    @property
    def outbox(self) -> Outbox: ...


# Opens a transaction; what it gives is the unit of work of that transaction.
UnitsOfWork = Callable[[], AbstractAsyncContextManager[UnitOfWork]]

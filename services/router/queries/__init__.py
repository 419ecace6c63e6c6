"""The router's read side: the roster, a rep's queue, the hand-off log, who a token is, what
sales did with the hand-offs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.router.domain import token_hash
from services.router.domain.calibration import HandOffOutcome
from services.router.domain.notices import LeadSummary
from services.router.outbound.store import lead_summary
from services.router.queries.calibration import hand_off_outcomes
from services.router.repository import open_leads_of
from services.router.tables import handoff_log, leads, reps

HANDOFFS_PER_READ = 500


class RepView(BaseModel):
    id: str
    name: str
    team: str
    capacity: int
    open_leads: int
    weight: float
    active: bool
    out_of_office_until: datetime | None
    timezone: str
    work_start_hour: int
    work_end_hour: int
    work_days: list[int]
    email: str | None
    chat_webhook_url: str | None


class QueuedLead(BaseModel):
    id: str
    stage: str | None
    status: str
    grade: str | None
    score: float | None
    team: str | None
    assigned_at: datetime | None
    sla_deadline: datetime | None
    breaches: int
    company: str | None
    email: str | None
    scores: dict[str, float] = Field(
        default={}, description="every named score at the hand-off (score key -> value)"
    )


@dataclass(frozen=True)
class LoggedHandoff:
    seq: int
    kind: str
    envelope: dict[str, Any]


@dataclass(frozen=True)
class RouterQueries:
    engine: AsyncEngine

    async def reps(self, rep_id: str | None = None) -> list[RepView]:
        """The roster by name (or the one rep), with each rep's open leads."""
        query = select(reps).order_by(reps.c.name)
        if rep_id is not None:
            query = query.where(reps.c.id == rep_id)
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [RepView(**{key: getattr(row, key) for key in RepView.model_fields}) for row in rows]

    async def queue_of(self, rep_id: str) -> list[QueuedLead]:
        async with self.engine.connect() as connection:
            rows = (await connection.execute(open_leads_of(rep_id))).all()
        return [
            QueuedLead(
                id=row.id,
                stage=row.stage,
                status=row.status,
                grade=row.grade,
                score=row.score,
                team=row.team,
                assigned_at=row.assigned_at,
                sla_deadline=row.sla_deadline,
                breaches=row.breaches,
                company=row.profile.get("company"),
                email=row.profile.get("email"),
                scores=row.scores,
            )
            for row in rows
        ]

    async def handoffs_after(
        self, seq: int, rep_id: str | None, team: str | None
    ) -> list[LoggedHandoff]:
        """The next hand-offs of the log after `seq`, in order (of one rep, one team)."""
        query = (
            select(handoff_log.c.seq, handoff_log.c.kind, handoff_log.c.envelope)
            .where(handoff_log.c.seq > seq)
            .order_by(handoff_log.c.seq)
            .limit(HANDOFFS_PER_READ)
        )
        if rep_id is not None:
            query = query.where(handoff_log.c.rep_id == rep_id)
        if team is not None:
            query = query.where(handoff_log.c.team == team)
        async with self.engine.connect() as connection:
            rows = await connection.execute(query)
            return [LoggedHandoff(row.seq, row.kind, row.envelope) for row in rows]

    async def lead_brief(self, lead_id: str) -> tuple[LeadSummary, str] | None:
        """Who the lead is, and its status: what a one-click page shows."""
        async with self.engine.connect() as connection:
            row = (await connection.execute(select(leads).where(leads.c.id == lead_id))).first()
        if row is None:
            return None
        return lead_summary(row), row.status

    async def rep_for_token(self, token: str) -> str | None:
        """The active rep whose bearer token this is."""
        async with self.engine.connect() as connection:
            return await connection.scalar(
                select(reps.c.id).where(reps.c.token_hash == token_hash(token), reps.c.active)
            )

    async def hand_off_outcomes(self, start: datetime, end: datetime) -> list[HandOffOutcome]:
        """Each lead handed off in [start, end), and what sales did with it (calibration)."""
        async with self.engine.connect() as connection:
            return await hand_off_outcomes(connection, start, end)

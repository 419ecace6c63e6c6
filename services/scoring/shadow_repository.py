"""The shadow runs' side of the scoring schema: runs, what each side decided per lead, and
sales' verdicts. Set-based like `repository`: one statement per step of a batch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.scoring.domain.shadow import Decision, ShadowLead, ShadowRun, Verdict
from services.scoring.records import utc
from services.scoring.tables import sales_verdicts, shadow_leads, shadow_runs

_RUN_COLUMNS = (
    shadow_runs.c.id,
    shadow_runs.c.label,
    shadow_runs.c.version,
    shadow_runs.c.active_version,
    shadow_runs.c.started_at,
    shadow_runs.c.stopped_at,
    shadow_runs.c.promoted_at,
)
_SIDES = ("active", "candidate")
_DECISION_FIELDS = ("score", "grade", "stage", "handed_off_at", "team")

_record_leads = insert(shadow_leads)
_RECORD_LEADS = _record_leads.on_conflict_do_update(
    index_elements=[shadow_leads.c.shadow_id, shadow_leads.c.lead_id],
    set_={
        column.name: _record_leads.excluded[column.name]
        for column in shadow_leads.columns
        if not column.primary_key
    },
)
_add_verdict = insert(sales_verdicts)
# The latest verdict wins, by when sales gave it (records may arrive out of order).
_ADD_VERDICTS = _add_verdict.on_conflict_do_update(
    index_elements=[sales_verdicts.c.lead_id],
    set_={name: _add_verdict.excluded[name] for name in ("verdict", "reason", "at")},
    where=_add_verdict.excluded.at >= sales_verdicts.c.at,
)


def _run(row: Any) -> ShadowRun:
    return ShadowRun.model_validate(row._asdict())


def _decision_row(side: str, decision: Decision) -> dict[str, Any]:
    handed_off_at = decision.handed_off_at
    return {
        f"{side}_score": decision.score,
        f"{side}_grade": decision.grade,
        f"{side}_stage": decision.stage,
        f"{side}_handed_off_at": utc(handed_off_at) if handed_off_at is not None else None,
        f"{side}_team": decision.team,
    }


def _decision(row: Any, side: str) -> Decision:
    score, grade, stage, handed_off_at, team = (
        getattr(row, f"{side}_{name}") for name in _DECISION_FIELDS
    )
    return Decision(score, grade, stage, handed_off_at.timestamp() if handed_off_at else None, team)


class SqlShadowRuns:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def running(self) -> tuple[ShadowRun, str] | None:
        """The run going on, with its candidate document."""
        row = (
            await self._connection.execute(
                select(*_RUN_COLUMNS, shadow_runs.c.document).where(
                    shadow_runs.c.stopped_at.is_(None)
                )
            )
        ).first()
        return None if row is None else (_run(row), row.document)

    async def find(self, run_id: str | None, *, lock: bool = False) -> ShadowRun | None:
        """The run `run_id`, else the latest one started."""
        query = select(*_RUN_COLUMNS).order_by(shadow_runs.c.started_at.desc()).limit(1)
        if run_id is not None:
            query = query.where(shadow_runs.c.id == run_id)
        if lock:
            query = query.with_for_update()
        row = (await self._connection.execute(query)).first()
        return None if row is None else _run(row)

    async def document(self, run_id: str) -> str:
        return str(
            await self._connection.scalar(
                select(shadow_runs.c.document).where(shadow_runs.c.id == run_id)
            )
        )

    async def frozen_report(self, run_id: str) -> dict[str, Any] | None:
        report: dict[str, Any] | None = await self._connection.scalar(
            select(shadow_runs.c.report).where(shadow_runs.c.id == run_id)
        )
        return report

    async def start(self, run: ShadowRun, document: str) -> bool:
        """Store a new run; False (nothing stored) when another one is going on."""
        inserted = await self._connection.execute(
            insert(shadow_runs)
            .values(**run.model_dump(), document=document)
            .on_conflict_do_nothing()
            .returning(shadow_runs.c.id)
        )
        return inserted.first() is not None

    async def finish(
        self, run_id: str, at: datetime, report: Mapping[str, Any], *, promoted: bool
    ) -> None:
        """Stop the run (if it was going on) and keep its report; promoted: say when."""
        values: dict[str, Any] = {
            "stopped_at": func.coalesce(shadow_runs.c.stopped_at, at),
            "report": report,
        }
        if promoted:
            values["promoted_at"] = at
        await self._connection.execute(
            update(shadow_runs).where(shadow_runs.c.id == run_id).values(values)
        )

    async def history(self, limit: int) -> list[ShadowRun]:
        rows = await self._connection.execute(
            select(*_RUN_COLUMNS).order_by(shadow_runs.c.started_at.desc()).limit(limit)
        )
        return [_run(row) for row in rows]

    async def record(self, run_id: str, leads: Sequence[ShadowLead], at: datetime) -> None:
        """What each side decided of these leads, as of `at`."""
        if leads:
            await self._connection.execute(
                _RECORD_LEADS,
                [
                    {
                        "shadow_id": run_id,
                        "lead_id": lead.lead_id,
                        "last_evaluated_at": at,
                        **_decision_row("active", lead.active),
                        **_decision_row("candidate", lead.candidate),
                    }
                    for lead in leads
                ],
            )

    async def leads(self, run_id: str) -> list[ShadowLead]:
        rows = await self._connection.execute(
            select(shadow_leads).where(shadow_leads.c.shadow_id == run_id)
        )
        return [
            ShadowLead(row.lead_id, _decision(row, "active"), _decision(row, "candidate"))
            for row in rows
        ]


class SqlSalesVerdicts:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Rows of `records.verdict_row`; a lead keeps its latest verdict."""
        if rows:
            await self._connection.execute(_ADD_VERDICTS, list(rows))

    async def of_run(self, run_id: str) -> dict[str, Verdict]:
        """The verdict on each lead the run evaluated that sales judged."""
        rows = await self._connection.execute(
            select(sales_verdicts.c.lead_id, sales_verdicts.c.verdict).join(
                shadow_leads,
                (shadow_leads.c.lead_id == sales_verdicts.c.lead_id)
                & (shadow_leads.c.shadow_id == run_id),
            )
        )
        return {row.lead_id: row.verdict for row in rows}

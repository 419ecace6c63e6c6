"""Funnel reports from the router's own projection of every stage change."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.definitions.model import LeadDefinitions

Slicing = Literal["all", "campaign", "grade", "rep"]
# Stages a lead leaves the funnel by: they are not steps of the path conversions follow.
EXITS = ("reject", "disqualify", "lost")

_SLICE = {
    "all": "'all'",
    "campaign": "coalesce(campaign, '(none)')",
    "grade": "coalesce(e.grade, '(none)')",
    "rep": "coalesce(l.rep_id::text, '(unassigned)')",
}
# A lead of several campaigns counts in each of them.
_PER_CAMPAIGN = """
LEFT JOIN LATERAL unnest(CASE WHEN cardinality(e.campaigns) > 0 THEN e.campaigns
                              ELSE ARRAY[NULL]::text[] END) AS campaign ON true
"""
_FUNNEL = """
WITH entries AS (
    SELECT lead_id, to_stage, occurred_at, grade, campaigns,
           lead(occurred_at) OVER (PARTITION BY lead_id ORDER BY occurred_at, event_id) AS left_at
    FROM router.stage_history
)
SELECT {slice} AS slice, e.to_stage AS stage, count(DISTINCT e.lead_id) AS leads,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM e.left_at - e.occurred_at))
           FILTER (WHERE e.left_at IS NOT NULL) AS median_seconds
FROM entries AS e
{per_campaign}
LEFT JOIN router.leads AS l ON l.id = e.lead_id
WHERE e.occurred_at >= :start AND e.occurred_at < :end
GROUP BY 1, 2
"""


class StageFigures(BaseModel):
    stage: str
    leads: int = Field(description="leads that entered the stage in the period")
    conversion_to_next: float | None = Field(
        description="share of them that entered the next stage of the path"
    )
    median_hours_in_stage: float | None = Field(
        description="median time until their next stage change (of those that moved on)"
    )


class FunnelSlice(BaseModel):
    slice: str
    stages: list[StageFigures]


class FunnelReport(BaseModel):
    start: datetime
    end: datetime
    by: Slicing
    slices: list[FunnelSlice]


def funnel_path(definitions: LeadDefinitions) -> list[str]:
    """The stages a lead moves along, in order (exits such as lost or nurture left out)."""
    return [s.key for s in definitions.stages if s.entry.action not in EXITS]


async def funnel_report(
    engine: AsyncEngine, definitions: LeadDefinitions, start: datetime, end: datetime, by: Slicing
) -> FunnelReport:
    """Leads per stage, conversion stage to stage and median time in stage, per slice."""
    per_campaign = _PER_CAMPAIGN if by == "campaign" else ""
    query = text(_FUNNEL.format(slice=_SLICE[by], per_campaign=per_campaign))
    async with engine.connect() as connection:
        rows = (await connection.execute(query, {"start": start, "end": end})).all()
    figures: dict[str, dict[str, tuple[int, float | None]]] = {}
    for row in rows:
        figures.setdefault(row.slice, {})[row.stage] = (row.leads, row.median_seconds)
    path = funnel_path(definitions)
    stages = [s.key for s in definitions.stages]
    slices = []
    for name in sorted(figures):
        counts = figures[name]
        rows_out = []
        for stage in stages:
            leads, median = counts.get(stage, (0, None))
            following = path[path.index(stage) + 1] if stage in path[:-1] else None
            conversion = (
                round(counts.get(following, (0, None))[0] / leads, 4)
                if following is not None and leads
                else None
            )
            hours = round(median / 3600, 3) if median is not None else None
            rows_out.append(
                StageFigures(
                    stage=stage,
                    leads=leads,
                    conversion_to_next=conversion,
                    median_hours_in_stage=hours,
                )
            )
        slices.append(FunnelSlice(slice=name, stages=rows_out))
    return FunnelReport(start=start, end=end, by=by, slices=slices)


def funnel_csv(report: FunnelReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["slice", "stage", "leads", "conversion_to_next", "median_hours_in_stage"])
    for piece in report.slices:
        for stage in piece.stages:
            writer.writerow(
                [
                    piece.slice,
                    stage.stage,
                    stage.leads,
                    stage.conversion_to_next,
                    stage.median_hours_in_stage,
                ]
            )
    return out.getvalue()

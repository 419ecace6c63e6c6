"""Funnel reports from the router's own projection of every stage change."""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.definitions.model import LeadDefinitions, hand_off_stage

Slicing = Literal["all", "campaign", "channel", "entry", "grade", "rep", "week"]
# Stages a lead leaves the funnel by: they are not steps of the path conversions follow.
EXITS = ("reject", "disqualify", "lost")

_SLICE = {
    "all": "'all'",
    "campaign": "coalesce(campaign, '(none)')",
    "channel": "coalesce(e.source_channel, '(unknown)')",
    "entry": "coalesce(CAST(:entries AS jsonb) ->> campaign, '(none)')",
    "grade": "coalesce(e.grade, '(none)')",
    "rep": "coalesce(l.rep_id::text, '(unassigned)')",
    "week": "to_char(e.occurred_at AT TIME ZONE 'UTC', 'IYYY-\"W\"IW')",
}
# A lead of several campaigns counts in each of them.
_PER_CAMPAIGN = """
LEFT JOIN LATERAL unnest(CASE WHEN cardinality(e.campaigns) > 0 THEN e.campaigns
                              ELSE ARRAY[NULL]::text[] END) AS campaign ON true
"""
_FUNNEL = """
WITH entries AS (
    SELECT lead_id, to_stage, occurred_at, grade, campaigns, source_channel,
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
    per_campaign = _PER_CAMPAIGN if by in ("campaign", "entry") else ""
    query = text(_FUNNEL.format(slice=_SLICE[by], per_campaign=per_campaign))
    async with engine.connect() as connection:
        # Where a campaign enters the funnel (top, middle, bottom), for slicing by entry.
        entries = json.dumps({key: c.funnel for key, c in definitions.campaigns.items()})
        rows = (
            await connection.execute(query, {"start": start, "end": end, "entries": entries})
        ).all()
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


def sections_csv(sections: dict[str, list[BaseModel]]) -> str:
    """Tables as one CSV: a `section` column, then the fields of the rows."""
    out = io.StringIO()
    columns = list(
        dict.fromkeys(
            name for rows in sections.values() for row in rows for name in type(row).model_fields
        )
    )
    writer = csv.DictWriter(out, ["section", *columns])
    writer.writeheader()
    for section, rows in sections.items():
        for row in rows:
            writer.writerow({"section": section, **row.model_dump()})
    return out.getvalue()


class FunnelRow(StageFigures):
    slice: str


def funnel_rows(report: FunnelReport) -> list[BaseModel]:
    return [
        FunnelRow(slice=piece.slice, **stage.model_dump())
        for piece in report.slices
        for stage in piece.stages
    ]


def _percentile(values: list[float], share: float) -> float | None:
    """The nearest-rank percentile (share 0.5 = median) of `values`."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(share * len(ordered)) - 1, 0)]


class SpeedToLead(BaseModel):
    """How fast leads handed off were accepted: minutes from hand-off to accept."""

    group: str
    handed_off: int
    accepted: int
    p50_minutes: float | None
    p90_minutes: float | None
    accepted_within_5_minutes: float | None = Field(description="share of those handed off")
    accepted_within_1_hour: float | None


class Bucket(BaseModel):
    up_to_minutes: float | None = Field(description="None: longer, or never accepted")
    leads: int


class SpeedToLeadReport(BaseModel):
    start: datetime
    end: datetime
    by_rep: list[SpeedToLead]
    by_team: list[SpeedToLead]
    histogram: list[Bucket]


HISTOGRAM_MINUTES = (5, 15, 30, 60, 240, 1440)


def histogram(minutes: list[float | None]) -> list[Bucket]:
    """How many leads were accepted within each bound (the last bucket: later or never)."""
    counts = [0] * (len(HISTOGRAM_MINUTES) + 1)
    for value in minutes:
        index = next(
            (
                i
                for i, bound in enumerate(HISTOGRAM_MINUTES)
                if value is not None and value <= bound
            ),
            len(HISTOGRAM_MINUTES),
        )
        counts[index] += 1
    bounds: list[float | None] = [*HISTOGRAM_MINUTES, None]
    return [
        Bucket(up_to_minutes=bound, leads=count)
        for bound, count in zip(bounds, counts, strict=True)
    ]


_HANDED_OFF = """
SELECT h.lead_id::text AS lead_id, min(h.occurred_at) AS handed_off_at,
       l.rep_id::text AS rep_id, l.team AS team,
       (SELECT min(a.created_at) FROM router.handoff_log AS a
         WHERE a.lead_id = h.lead_id AND a.kind = 'accepted'
           AND a.created_at >= min(h.occurred_at)) AS accepted_at,
       (SELECT a.rep_id::text FROM router.handoff_log AS a
         WHERE a.lead_id = h.lead_id AND a.kind = 'accepted'
         ORDER BY a.created_at LIMIT 1) AS accepted_by
FROM router.stage_history AS h
LEFT JOIN router.leads AS l ON l.id = h.lead_id
WHERE h.to_stage = :hand_off AND h.occurred_at >= :start AND h.occurred_at < :end
GROUP BY h.lead_id, l.rep_id, l.team
"""


def _speed(group: str, rows: list[tuple[float | None]]) -> SpeedToLead:
    minutes = [m for (m,) in rows if m is not None]
    handed = len(rows)
    return SpeedToLead(
        group=group,
        handed_off=handed,
        accepted=len(minutes),
        p50_minutes=_round(_percentile(minutes, 0.5)),
        p90_minutes=_round(_percentile(minutes, 0.9)),
        accepted_within_5_minutes=round(sum(m <= 5 for m in minutes) / handed, 4),
        accepted_within_1_hour=round(sum(m <= 60 for m in minutes) / handed, 4),
    )


def _round(value: float | None) -> float | None:
    return round(value, 2) if value is not None else None


async def speed_to_lead_report(
    engine: AsyncEngine, definitions: LeadDefinitions, start: datetime, end: datetime
) -> SpeedToLeadReport:
    """Minutes from the hand-off to the rep's accept, per rep and per team."""
    params = {"hand_off": hand_off_stage(definitions).key, "start": start, "end": end}
    async with engine.connect() as connection:
        rows = (await connection.execute(text(_HANDED_OFF), params)).all()
    by_rep: dict[str, list[tuple[float | None]]] = {}
    by_team: dict[str, list[tuple[float | None]]] = {}
    every: list[float | None] = []
    for row in rows:
        minutes = (
            (row.accepted_at - row.handed_off_at).total_seconds() / 60 if row.accepted_at else None
        )
        by_rep.setdefault(row.accepted_by or row.rep_id or "(unassigned)", []).append((minutes,))
        by_team.setdefault(row.team or "(none)", []).append((minutes,))
        every.append(minutes)
    return SpeedToLeadReport(
        histogram=histogram(every),
        start=start,
        end=end,
        by_rep=[_speed(group, values) for group, values in sorted(by_rep.items())],
        by_team=[_speed(group, values) for group, values in sorted(by_team.items())],
    )


class Count(BaseModel):
    key: str
    leads: int


class CampaignOutcome(BaseModel):
    campaign: str
    sales_ready: int = Field(description="leads handed off to sales")
    won: int
    lost: int
    won_amount: float
    cost: float | None
    cost_per_sales_ready: float | None
    roi: float | None = Field(description="(won amount - cost) / cost")


class NurtureReport(BaseModel):
    """The feedback loop: why leads come back, and what campaigns bring in the end."""

    start: datetime
    end: datetime
    returned_by_reason: list[Count]
    returned_by_rep: list[Count]
    returned_by_campaign: list[Count]
    handed_off_again: int = Field(description="leads handed off more than once in the period")
    campaigns: list[CampaignOutcome]


_ACTIONS = """
SELECT s.action, s.rep_id::text AS rep_id, s.details,
       coalesce(l.profile -> 'campaigns', '[]') AS campaigns
FROM router.sales_actions AS s LEFT JOIN router.leads AS l ON l.id = s.lead_id
WHERE s.action IN ('reject', 'won', 'lost') AND s.created_at >= :start AND s.created_at < :end
"""
_HAND_OFFS = """
SELECT lead_id::text AS lead_id, campaigns FROM router.stage_history
WHERE to_stage = :hand_off AND occurred_at >= :start AND occurred_at < :end
"""


def _counts(counter: Counter[str]) -> list[Count]:
    return [Count(key=key, leads=leads) for key, leads in counter.most_common()]


async def nurture_report(
    engine: AsyncEngine, definitions: LeadDefinitions, start: datetime, end: datetime
) -> NurtureReport:
    """Returns to nurture by reason, rep and campaign; won and lost by campaign, with ROI."""
    params = {"hand_off": hand_off_stage(definitions).key, "start": start, "end": end}
    async with engine.connect() as connection:
        actions = (await connection.execute(text(_ACTIONS), params)).all()
        hand_offs = (await connection.execute(text(_HAND_OFFS), params)).all()
    by_reason: Counter[str] = Counter()
    by_rep: Counter[str] = Counter()
    by_campaign: Counter[str] = Counter()
    outcomes: dict[str, Counter[str]] = {}
    amounts: dict[str, float] = {}
    for row in actions:
        campaigns = list(row.campaigns) or ["(none)"]
        if row.action == "reject":
            by_reason[str(row.details.get("reason"))] += 1
            by_rep[row.rep_id] += 1
            by_campaign.update(campaigns)
            continue
        for campaign in campaigns:
            outcomes.setdefault(campaign, Counter())[row.action] += 1
            if row.action == "won":
                amounts[campaign] = amounts.get(campaign, 0.0) + float(
                    row.details.get("amount") or 0
                )
    times_handed: Counter[str] = Counter()
    ready_leads: set[tuple[str, str]] = set()
    for row in hand_offs:
        times_handed[row.lead_id] += 1
        ready_leads.update((row.lead_id, c) for c in list(row.campaigns) or ["(none)"])
    ready = Counter(campaign for _, campaign in ready_leads)
    return NurtureReport(
        start=start,
        end=end,
        returned_by_reason=_counts(by_reason),
        returned_by_rep=_counts(by_rep),
        returned_by_campaign=_counts(by_campaign),
        handed_off_again=sum(1 for count in times_handed.values() if count > 1),
        campaigns=[
            _outcome(
                definitions, key, ready[key], outcomes.get(key, Counter()), amounts.get(key, 0.0)
            )
            for key in sorted(set(ready) | set(outcomes))
        ],
    )


def _outcome(
    definitions: LeadDefinitions, key: str, ready: int, outcome: Counter[str], amount: float
) -> CampaignOutcome:
    campaign = definitions.campaigns.get(key)
    cost = campaign.cost if campaign else None
    return CampaignOutcome(
        campaign=key,
        sales_ready=ready,
        won=outcome["won"],
        lost=outcome["lost"],
        won_amount=amount,
        cost=cost,
        cost_per_sales_ready=round(cost / ready, 2) if cost is not None and ready else None,
        roi=round((amount - cost) / cost, 4) if cost else None,
    )

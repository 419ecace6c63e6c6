"""The reports' reads: the funnel from every stage change, speed to lead, the nurture loop,
and routing fairness (its statements in `fairness.py`).

Every median and percentile is PostgreSQL's `percentile_cont` (interpolated), so that the
figures of one report agree with those of another.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.router.domain.fairness import Member
from services.router.queries import fairness
from services.router.queries.fairness import HandOffFigures
from services.router.tables import handoff_log, leads, sales_actions, stage_history

Slicing = Literal["all", "campaign", "channel", "entry", "grade", "rep", "week"]

# The tables by their full names, for the statements below.
TABLES = {
    "stage_history": stage_history.fullname,
    "leads": leads.fullname,
    "handoff_log": handoff_log.fullname,
    "sales_actions": sales_actions.fullname,
}
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
    FROM {stage_history}
)
SELECT {slice} AS slice, e.to_stage AS stage, count(DISTINCT e.lead_id) AS leads,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM e.left_at - e.occurred_at))
           FILTER (WHERE e.left_at IS NOT NULL) AS median_seconds
FROM entries AS e
{per_campaign}
LEFT JOIN {leads} AS l ON l.id = e.lead_id
WHERE e.occurred_at >= :start AND e.occurred_at < :end
GROUP BY 1, 2
"""
# Minutes from each lead's hand-off to its accept (NULL: not accepted), with the rep who
# accepted it (else the one who has it) and its team.
_SPEED = """
WITH handed AS (
    SELECT h.lead_id, min(h.occurred_at) AS handed_off_at,
           l.rep_id::text AS rep_id, l.team AS team,
           (SELECT min(a.created_at) FROM {handoff_log} AS a
             WHERE a.lead_id = h.lead_id AND a.kind = 'accepted'
               AND a.created_at >= min(h.occurred_at)) AS accepted_at,
           (SELECT a.rep_id::text FROM {handoff_log} AS a
             WHERE a.lead_id = h.lead_id AND a.kind = 'accepted'
             ORDER BY a.created_at LIMIT 1) AS accepted_by
    FROM {stage_history} AS h
    LEFT JOIN {leads} AS l ON l.id = h.lead_id
    WHERE h.to_stage = :hand_off AND h.occurred_at >= :start AND h.occurred_at < :end
    GROUP BY h.lead_id, l.rep_id, l.team
), timed AS (
    SELECT coalesce(accepted_by, rep_id, '(unassigned)') AS rep, coalesce(team, '(none)') AS team,
           extract(epoch FROM accepted_at - handed_off_at) / 60 AS minutes
    FROM handed
)
"""
_SPEED_BY_GROUP = (
    _SPEED
    + """
SELECT GROUPING(rep) = 1 AS by_team, coalesce(rep, team) AS "group",
       count(*) AS handed_off, count(minutes) AS accepted,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY minutes) AS p50_minutes,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY minutes) AS p90_minutes,
       count(*) FILTER (WHERE minutes <= 5) AS within_5_minutes,
       count(*) FILTER (WHERE minutes <= 60) AS within_1_hour
FROM timed
GROUP BY GROUPING SETS ((rep), (team))
"""
)
_SPEED_PER_LEAD = _SPEED + "SELECT minutes FROM timed"  # noqa: S608 - no input in it
_CLOSING_ACTIONS = """
SELECT s.action, s.rep_id::text AS rep_id, s.details,
       coalesce(l.profile -> 'campaigns', '[]') AS campaigns
FROM {sales_actions} AS s LEFT JOIN {leads} AS l ON l.id = s.lead_id
WHERE s.action IN ('reject', 'won', 'lost') AND s.created_at >= :start AND s.created_at < :end
"""
_HAND_OFFS = """
SELECT lead_id::text AS lead_id, campaigns FROM {stage_history}
WHERE to_stage = :hand_off AND occurred_at >= :start AND occurred_at < :end
"""


@dataclass(frozen=True)
class ReportQueries:
    engine: AsyncEngine

    async def _read(self, statement: str, **params: Any) -> list[Row[Any]]:
        async with self.engine.connect() as connection:
            return list((await connection.execute(text(statement), params)).all())

    async def stage_figures(
        self, start: datetime, end: datetime, by: Slicing, entries: str
    ) -> list[Row[Any]]:
        """Per slice and stage: leads that entered it, median seconds until they moved on.
        `entries`: campaign -> where it enters the funnel, as JSON, for slicing by entry."""
        per_campaign = _PER_CAMPAIGN if by in ("campaign", "entry") else ""
        statement = _FUNNEL.format(slice=_SLICE[by], per_campaign=per_campaign, **TABLES)
        return await self._read(statement, start=start, end=end, entries=entries)

    async def speed_by_group(self, hand_off: str, start: datetime, end: datetime) -> list[Row[Any]]:
        """Per rep, then per team: handed off, accepted, p50/p90 minutes, accepted in time."""
        statement = _SPEED_BY_GROUP.format(**TABLES)
        return await self._read(statement, hand_off=hand_off, start=start, end=end)

    async def minutes_to_accept(
        self, hand_off: str, start: datetime, end: datetime
    ) -> list[float | None]:
        statement = _SPEED_PER_LEAD.format(**TABLES)
        rows = await self._read(statement, hand_off=hand_off, start=start, end=end)
        return [None if row.minutes is None else float(row.minutes) for row in rows]

    async def closing_actions(self, start: datetime, end: datetime) -> list[Row[Any]]:
        """Rejections, wins and losses, with the campaigns of their leads."""
        return await self._read(_CLOSING_ACTIONS.format(**TABLES), start=start, end=end)

    async def hand_offs(self, hand_off: str, start: datetime, end: datetime) -> list[Row[Any]]:
        statement = _HAND_OFFS.format(**TABLES)
        return await self._read(statement, hand_off=hand_off, start=start, end=end)

    async def roster(self) -> list[Member]:
        """Every rep, active or not, as the fair split weighs them."""
        async with self.engine.connect() as connection:
            return await fairness.roster(connection)

    async def hand_off_figures(self, start: datetime, end: datetime) -> list[HandOffFigures]:
        """Per rep: the hand-offs received in the period, and what became of them."""
        async with self.engine.connect() as connection:
            return await fairness.hand_off_figures(connection, start, end)

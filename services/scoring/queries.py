"""Read side of scoring: a lead explained, leads listed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.scoring.domain import ScoringModel, evaluate, explained, rounded_scores, score_as_of
from services.scoring.repository import SqlInteractions, SqlReturns, stored_lead
from services.scoring.tables import interactions, leads
from shared.events import normalise_email


class RulePoints(BaseModel):
    rule: str
    points: float
    decayed_points: float


class FitPoints(BaseModel):
    rule: str
    points: float


class Breakdown(BaseModel):
    """Which rule gave which points: behaviour before and after decay (most first), and fit."""

    behaviour: list[RulePoints]
    fit: list[FitPoints]


class NamedScoreDetail(BaseModel):
    """A named score of the lead, with its own breakdown."""

    key: str
    name: str
    score: float
    engagement: float
    fit: float
    thresholds_met: list[float]
    breakdown: Breakdown


class LeadSummary(BaseModel):
    id: str
    email: str | None
    stage: str | None
    grade: str | None
    score: float
    scores: dict[str, float] = Field(
        default={}, description="every named score as last stored (score key -> value)"
    )
    campaigns: list[str]
    last_event_time: datetime | None
    definitions_version: str | None


class LeadDetail(LeadSummary):
    engagement: float
    fit: float
    thresholds_met: list[float]
    interaction_count: int
    as_of: datetime
    breakdown: Breakdown
    named_scores: list[NamedScoreDetail] = Field(
        description="every named score of the definitions, in their order, with its breakdown"
    )


def _breakdown(
    points_by_rule: Mapping[str, float],
    decayed_by_rule: Mapping[str, float],
    fit_by_rule: Mapping[str, float],
) -> Breakdown:
    return Breakdown(
        behaviour=sorted(
            (
                RulePoints(
                    rule=rule,
                    points=round(points, 3),
                    decayed_points=round(decayed_by_rule[rule], 3),
                )
                for rule, points in points_by_rule.items()
            ),
            key=lambda share: (-share.decayed_points, share.rule),
        ),
        fit=[FitPoints(rule=rule, points=points) for rule, points in fit_by_rule.items()],
    )


class LeadPage(BaseModel):
    items: list[LeadSummary]
    next_cursor: str | None


def _summary(row: Row[Any]) -> LeadSummary:
    """A lead as last stored."""
    return LeadSummary(
        id=row.id,
        email=row.email,
        stage=row.stage,
        grade=row.grade,
        score=round(row.score, 3),
        scores=rounded_scores((row.timeline_state or {}).get("scores", {})),
        campaigns=list(row.campaigns),
        last_event_time=row.last_event_time,
        definitions_version=row.definitions_version,
    )


@dataclass(frozen=True)
class ScoringQueries:
    engine: AsyncEngine

    async def lead_detail(
        self, model: ScoringModel, version: str, lead_id: str, now: datetime
    ) -> LeadDetail | None:
        """The lead scored as of `now` from its saved state, with the breakdown. A lead
        saved before states were kept, or under other definitions, is replayed once."""
        async with self.engine.connect() as connection:
            row = (await connection.execute(select(leads).where(leads.c.id == lead_id))).first()
            if row is None:
                return None
            result = explained(model, version, stored_lead(row), now.timestamp())
            if result is None:
                history = (await SqlInteractions(connection).histories([lead_id])).get(lead_id, [])
                returns = (await SqlReturns(connection).of([lead_id])).get(lead_id, [])
                as_of = score_as_of(now.timestamp(), history)
                result = evaluate(model, history, as_of, returns=returns, explain=True)
        return LeadDetail(
            **_summary(row).model_dump()
            | {
                "grade": result.grade,
                "score": round(result.score, 3),
                "scores": rounded_scores(result.scores),
                "definitions_version": version,
            },
            engagement=round(result.engagement, 3),
            fit=result.fit,
            thresholds_met=sorted(result.thresholds_met),
            interaction_count=row.interaction_count,
            as_of=now,
            breakdown=_breakdown(result.points_by_rule, result.decayed_by_rule, result.fit_by_rule),
            named_scores=[
                NamedScoreDetail(
                    key=named.key,
                    name=named.name,
                    score=round(named.score, 3),
                    engagement=round(named.engagement, 3),
                    fit=named.fit,
                    thresholds_met=sorted(named.thresholds_met),
                    breakdown=_breakdown(
                        named.points_by_rule, named.decayed_by_rule, named.fit_by_rule
                    ),
                )
                for named in result.named_scores
            ],
        )

    async def lead_page(
        self,
        *,
        stage: str | None,
        grade: str | None,
        campaign: str | None,
        email: str | None,
        after: str | None,
        limit: int,
    ) -> LeadPage:
        """Leads filtered by stage, grade, campaign and email, in id order (keyset pagination)."""
        query = select(leads).order_by(leads.c.id).limit(limit + 1)
        if email is not None:
            query = query.where(leads.c.email == normalise_email(email))
        if stage is not None:
            query = query.where(leads.c.stage == stage)
        if grade is not None:
            query = query.where(leads.c.grade == grade)
        if campaign is not None:
            query = query.where(leads.c.campaigns.contains([campaign]))
        if after is not None:
            query = query.where(leads.c.id > after)
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        items = [_summary(row) for row in rows[:limit]]
        return LeadPage(items=items, next_cursor=items[-1].id if len(rows) > limit else None)

    async def interaction_count(self) -> int:
        async with self.engine.connect() as connection:
            return int(await connection.scalar(select(func.count()).select_from(interactions)) or 0)

    async def lead_count(self) -> int:
        async with self.engine.connect() as connection:
            return int(await connection.scalar(select(func.count()).select_from(leads)) or 0)

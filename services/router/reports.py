"""Funnel reports from the router's own projection of every stage change."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Row

from services.router.domain.fairness import Member, Received, RepShare, routing_fairness
from services.router.queries.fairness import HandOffFigures
from services.router.queries.reporting import ReportQueries, Slicing
from shared.definitions.model import LeadDefinitions, hand_off_stage

# Stages a lead leaves the funnel by: they are not steps of the path conversions follow.
EXITS = ("reject", "disqualify", "lost")


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
    queries: ReportQueries,
    definitions: LeadDefinitions,
    start: datetime,
    end: datetime,
    by: Slicing,
) -> FunnelReport:
    """Leads per stage, conversion stage to stage and median time in stage, per slice."""
    # Where a campaign enters the funnel (top, middle, bottom), for slicing by entry.
    entries = json.dumps({key: c.funnel for key, c in definitions.campaigns.items()})
    rows = await queries.stage_figures(start, end, by, entries)
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


def _speed(row: Row[Any]) -> SpeedToLead:
    return SpeedToLead(
        group=row.group,
        handed_off=row.handed_off,
        accepted=row.accepted,
        p50_minutes=_round(row.p50_minutes),
        p90_minutes=_round(row.p90_minutes),
        accepted_within_5_minutes=round(row.within_5_minutes / row.handed_off, 4),
        accepted_within_1_hour=round(row.within_1_hour / row.handed_off, 4),
    )


def _round(value: float | None) -> float | None:
    return round(value, 2) if value is not None else None


async def speed_to_lead_report(
    queries: ReportQueries, definitions: LeadDefinitions, start: datetime, end: datetime
) -> SpeedToLeadReport:
    """Minutes from the hand-off to the rep's accept, per rep and per team."""
    hand_off = hand_off_stage(definitions).key
    groups = sorted(await queries.speed_by_group(hand_off, start, end), key=lambda r: r.group)
    return SpeedToLeadReport(
        histogram=histogram(await queries.minutes_to_accept(hand_off, start, end)),
        start=start,
        end=end,
        by_rep=[_speed(row) for row in groups if not row.by_team],
        by_team=[_speed(row) for row in groups if row.by_team],
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


def _counts(counter: Counter[str]) -> list[Count]:
    return [Count(key=key, leads=leads) for key, leads in counter.most_common()]


async def nurture_report(
    queries: ReportQueries, definitions: LeadDefinitions, start: datetime, end: datetime
) -> NurtureReport:
    """Returns to nurture by reason, rep and campaign; won and lost by campaign, with ROI."""
    actions = await queries.closing_actions(start, end)
    hand_offs = await queries.hand_offs(hand_off_stage(definitions).key, start, end)
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


class RepRouting(BaseModel):
    """One rep's hand-offs in the period against their fair share, and what became of them."""

    rep_id: str
    name: str
    team: str
    active: bool
    available_share: float = Field(
        description="share of the period (up to now) in which the rep was on the roster and "
        "active; the roster keeps no history, so a rep inactive now counts 0"
    )
    strategy_weight: float = Field(
        description="what the team's strategy splits by: 1 (round_robin), the rep's weight "
        "(weighted), their capacity (least_loaded)"
    )
    received: int = Field(description="hand-offs to the rep in the period (assigned, reassigned)")
    as_account_owner: int = Field(description="of them, given to the rep as the account's owner")
    by_strategy: int = Field(description="received - as_account_owner: by the team's strategy")
    fair_share: float = Field(
        description="the rep's part of the team's shared hand-offs, by strategy weight x "
        "available share"
    )
    ratio_to_fair_share: float | None = Field(
        description="by_strategy / fair_share: 1 is fair; null without a fair share"
    )
    accepted: int = Field(description="of the hand-offs received, those the rep accepted")
    acceptance_rate: float | None = Field(description="accepted / received")
    sla_breaches: int = Field(
        description="of the hand-offs received, those whose SLA deadline the router found "
        "missed (escalated, or taken away unaccepted at or after the deadline)"
    )
    reassigned_away: int = Field(
        description="of the hand-offs received, those the router took from the rep"
    )
    median_minutes_to_accept: float | None = Field(
        description="median minutes from the hand-off to the rep's accept"
    )


class TeamRouting(BaseModel):
    """A team's hand-offs in the period, and how fairly its strategy shared them."""

    team: str
    strategy: str | None = Field(description="null: a team the definitions no longer have")
    rep_count: int = Field(description="reps listed: available in the period, or received")
    received: int
    as_account_owner: int
    by_strategy: int
    shared: int = Field(
        description="the by-strategy hand-offs split into fair shares: those of the reps who "
        "have one (the others were not available in the period)"
    )
    gini: float | None = Field(
        description="Gini coefficient of by_strategy / fair_share over the reps with a fair "
        "share: 0 is fair; null when nothing was shared"
    )


class RoutingReport(BaseModel):
    """Routing fairness: each rep's hand-offs against their fair share, per team."""

    start: datetime
    end: datetime
    teams: list[TeamRouting]
    reps: list[RepRouting]


def _share(value: float | None) -> float | None:
    return round(value, 4) if value is not None else None


def _rep_routing(share: RepShare, figures: HandOffFigures | None) -> RepRouting:
    member, received = share.member, share.received
    return RepRouting(
        rep_id=member.rep_id,
        name=member.name,
        team=member.team,
        active=member.active,
        available_share=round(share.available, 4),
        strategy_weight=share.weight,
        received=received.total,
        as_account_owner=received.as_account_owner,
        by_strategy=received.by_strategy,
        fair_share=round(share.fair_share, 2),
        ratio_to_fair_share=_share(share.ratio),
        accepted=figures.accepted if figures else 0,
        acceptance_rate=round(figures.accepted / figures.received, 4) if figures else None,
        sla_breaches=figures.sla_breaches if figures else 0,
        reassigned_away=figures.reassigned_away if figures else 0,
        median_minutes_to_accept=_round(figures.median_minutes_to_accept) if figures else None,
    )


async def routing_report(
    queries: ReportQueries,
    definitions: LeadDefinitions,
    start: datetime,
    end: datetime,
    now: datetime,
) -> RoutingReport:
    """Per rep: hand-offs received in [start, end) against their fair share, those given
    to them as account owner apart, and what became of them; per team: a Gini coefficient."""
    figures = {row.rep_id: row for row in await queries.hand_off_figures(start, end)}
    members = await queries.roster()
    known = {member.rep_id for member in members}
    # A rep the roster does not hold (cannot happen: reps are deactivated, never deleted).
    members += [
        Member(rep_id, rep_id, "(none)", 1.0, 0, active=False, joined_at=end)
        for rep_id in figures
        if rep_id not in known
    ]
    routing = definitions.routing
    strategies = {team.key: team.strategy for team in routing.teams} if routing else {}
    received = {
        rep_id: Received(row.received, row.as_account_owner) for rep_id, row in figures.items()
    }
    teams = routing_fairness(members, received, strategies, start, end, now)
    return RoutingReport(
        start=start,
        end=end,
        teams=[
            TeamRouting(
                team=team.team,
                strategy=team.strategy,
                rep_count=len(team.reps),
                received=team.received,
                as_account_owner=team.as_account_owner,
                by_strategy=team.by_strategy,
                shared=team.shared,
                gini=_share(team.gini),
            )
            for team in teams
        ],
        reps=[
            _rep_routing(share, figures.get(share.member.rep_id))
            for team in teams
            for share in team.reps
        ],
    )

"""The reports (admin): the funnel, speed to lead, nurture, routing fairness and calibration
from sales' feedback, as JSON or CSV."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from services.router.api.dependencies import Definitions, Queries, Reports, admin_routes
from services.router.domain.calibration import (
    CalibrationReport,
    calibration_report,
    calibration_sections,
)
from services.router.queries.reporting import Slicing
from services.router.reports import (
    RoutingReport,
    funnel_report,
    funnel_rows,
    nurture_report,
    routing_report,
    sections_csv,
    speed_to_lead_report,
)
from shared.http import StorableTime
from shared.media import preferred_media_type
from shared.problems import InvalidField, ProblemError

CSV = "text/csv"


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime


async def get_period(
    start: Annotated[
        StorableTime | None, Query(alias="from", description="default: 30 days ago")
    ] = None,
    end: Annotated[StorableTime | None, Query(alias="to", description="default: now")] = None,
) -> Period:
    naive = [
        name
        for name, moment in (("from", start), ("to", end))
        if moment is not None and moment.tzinfo is None
    ]
    if naive:
        raise ProblemError(
            422,
            "give from and to with a time zone",
            errors=[
                InvalidField(field=f"query.{name}", message="needs a UTC offset, e.g. Z")
                for name in naive
            ],
        )
    end = end or datetime.now(UTC)
    try:
        start = start or end - timedelta(days=30)
    except OverflowError as error:
        raise ProblemError(
            422,
            "30 days before `to` is before the year 1",
            errors=[InvalidField(field="query.to", message="give `from` too")],
        ) from error
    return Period(start, end)


PeriodDep = Annotated[Period, Depends(get_period)]
REPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {}, CSV: {}}}
}


def _answer(request: Request, report: BaseModel, sections: dict[str, list[BaseModel]]) -> Response:
    """JSON, or CSV when the caller prefers it (JSON too when it accepts neither)."""
    accepted = preferred_media_type(request.headers.get("accept"), ["application/json", CSV])
    if accepted == CSV:
        return Response(sections_csv(sections), media_type=CSV)
    return JSONResponse(report.model_dump(mode="json"))


routes = admin_routes()


@routes.get(
    "/reports/funnel",
    summary="The funnel: leads per stage, conversion, time in stage",
    responses=REPORT_RESPONSES,
)
async def funnel(
    request: Request,
    queries: Reports,
    loaded: Definitions,
    period: PeriodDep,
    by: Slicing = "all",
) -> Response:
    report = await funnel_report(queries, loaded.definitions, period.start, period.end, by)
    return _answer(request, report, {"funnel": funnel_rows(report)})


@routes.get(
    "/reports/speed-to-lead",
    summary="Minutes from hand-off to accept, per rep and team",
    responses=REPORT_RESPONSES,
)
async def speed_to_lead(
    request: Request, queries: Reports, loaded: Definitions, period: PeriodDep
) -> Response:
    report = await speed_to_lead_report(queries, loaded.definitions, period.start, period.end)
    return _answer(request, report, {"rep": list(report.by_rep), "team": list(report.by_team)})


@routes.get(
    "/reports/nurture",
    summary="Why leads come back, and what campaigns bring in the end",
    responses=REPORT_RESPONSES,
)
async def nurture(
    request: Request, queries: Reports, loaded: Definitions, period: PeriodDep
) -> Response:
    report = await nurture_report(queries, loaded.definitions, period.start, period.end)
    return _answer(
        request,
        report,
        {
            "returned_by_reason": list(report.returned_by_reason),
            "returned_by_rep": list(report.returned_by_rep),
            "returned_by_campaign": list(report.returned_by_campaign),
            "campaign": list(report.campaigns),
        },
    )


@routes.get(
    "/reports/routing",
    summary="Routing fairness: each rep's hand-offs against their fair share, per team",
    description=(
        "Per rep: the hand-offs received in the period (those given as account owner "
        "apart) against their fair share of the team's other hand-offs (by the team's "
        "strategy: alike, by weight or by capacity, times the share of the period the rep "
        "was on the roster and active), then what became of them: accepted, SLA breaches, "
        "reassigned away, median minutes to accept. Per team: the Gini coefficient of "
        "received / fair share (0 is fair)."
    ),
    responses={200: {"model": RoutingReport, **REPORT_RESPONSES[200]}},
)
async def routing(
    request: Request, queries: Reports, loaded: Definitions, period: PeriodDep
) -> Response:
    report = await routing_report(
        queries, loaded.definitions, period.start, period.end, datetime.now(UTC)
    )
    return _answer(request, report, {"rep": list(report.reps), "team": list(report.teams)})


@routes.get(
    "/reports/calibration",
    summary="Calibration from sales' feedback: acceptance of hand-offs, and what to change",
    description=(
        "For the leads handed off in the period: accepted (ever), returned to nurture (and "
        "why), pending, converted to an opportunity, won; acceptance = accepted / (accepted + "
        "returned), opportunity and won rates of those handed off, each with its 95% Wilson "
        "interval. Overall, and by definitions version, campaign, source channel, grade and "
        "scoring rule (a lead counts for each of its campaigns and of its top rules at the "
        "hand-off). Suggestions: halve the points of a rule whose acceptance is surely below "
        "the average; the hand-off score from which acceptance reaches `target`. Each comes "
        "with a candidate definitions document to post to scoring's /v1/definitions/shadow."
    ),
    responses={200: {"model": CalibrationReport, **REPORT_RESPONSES[200]}},
)
async def calibration(
    request: Request,
    queries: Queries,
    loaded: Definitions,
    period: PeriodDep,
    target: Annotated[
        float, Query(gt=0, lt=1, description="the acceptance rate the team wants")
    ] = 0.6,
) -> Response:
    outcomes = await queries.hand_off_outcomes(period.start, period.end)
    report = calibration_report(outcomes, loaded.definitions, period.start, period.end, target)
    return _answer(request, report, calibration_sections(report))

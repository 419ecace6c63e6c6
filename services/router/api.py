"""Router's HTTP routes (entrypoint): the roster, rep actions, queues, the hand-off stream."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select

from services.router import repository
from services.router.actions import SalesDesk
from services.router.domain import (
    ActionNotAllowed,
    LeadNotFound,
    MissingRequirements,
    NotYourLead,
    RepNotFound,
    UnknownReason,
)
from services.router.reports import (
    Slicing,
    funnel_report,
    funnel_rows,
    nurture_report,
    sections_csv,
    speed_to_lead_report,
)
from services.router.tables import reps
from shared.auth import bearer_token, require_admin, same_secret
from shared.db import is_database_outage
from shared.http import NO_NUL, StorableTime
from shared.problems import InvalidField, ProblemError, problem_responses

STREAM_POLL_SECONDS = 0.2
STREAM_OUTAGE_POLL_SECONDS = 2.0
MAX_SEQ = 2**63 - 1  # hand-offs are numbered by a bigint


async def get_service(request: Request) -> SalesDesk:
    service: SalesDesk = request.app.state.desk
    return service


Service = Annotated[SalesDesk, Depends(get_service)]


class Caller(BaseModel):
    admin: bool
    rep_id: str | None


async def get_caller(request: Request, service: Service) -> Caller:
    """The admin key, or a rep's bearer token; anything else is 401.

    Browsers' EventSource cannot send headers, so the stream also takes `access_token`.
    """
    token = bearer_token(request.headers) or request.query_params.get("access_token")
    admin_key = request.app.state.settings.admin_key
    if token and admin_key and same_secret(token, admin_key):
        return Caller(admin=True, rep_id=None)
    rep_id = await service.rep_for_token(token) if token else None
    if rep_id is None:
        raise ProblemError(
            401, "send a rep token or the admin key as Authorization: Bearer <token>"
        )
    return Caller(admin=False, rep_id=rep_id)


CallerDep = Annotated[Caller, Depends(get_caller)]


class RepFields(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200, pattern=NO_NUL)
    team: str | None = Field(default=None, max_length=64, pattern=NO_NUL)
    capacity: int | None = Field(default=None, ge=0, le=10_000)
    weight: float | None = Field(default=None, gt=0, le=1_000)
    out_of_office_until: StorableTime | None = None
    timezone: str | None = None
    work_start_hour: int | None = Field(default=None, ge=0, le=23)
    work_end_hour: int | None = Field(default=None, ge=1, le=24)
    work_days: list[Annotated[int, Field(ge=0, le=6)]] | None = Field(
        default=None, description="0 = Monday"
    )
    active: bool | None = None

    def changes(self) -> dict[str, Any]:
        """The fields the caller sent; null leaves a field as it is, but clears an absence."""
        return {
            key: value
            for key, value in self.model_dump(exclude_unset=True).items()
            if value is not None or key == "out_of_office_until"
        }

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, zone: str | None) -> str | None:
        if zone is not None:
            try:
                ZoneInfo(zone)
            except (ZoneInfoNotFoundError, ValueError) as error:
                raise ValueError("is not an IANA time zone such as Europe/Berlin") from error
        return zone


class NewRep(RepFields):
    name: str = Field(min_length=1, max_length=200, pattern=NO_NUL)
    team: str = Field(max_length=64, pattern=NO_NUL)


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


class CreatedRep(RepView):
    token: str = Field(description="the rep's bearer token: shown only now")


def _known_team(service: SalesDesk, team: str | None) -> None:
    teams = [t.key for t in service.router.routing.teams]
    if team is not None and team not in teams:
        raise ProblemError(
            422,
            "unknown team",
            errors=[InvalidField(field="team", message=f"must be one of {', '.join(teams)}")],
        )


async def _rep_views(service: SalesDesk, rep_id: str | None = None) -> list[RepView]:
    async with service.router.engine.connect() as connection:
        query = select(reps).order_by(reps.c.name)
        if rep_id is not None:
            query = query.where(reps.c.id == rep_id)
        rows = (await connection.execute(query)).all()
        counts = await repository.open_lead_counts(connection)
    return [
        RepView(
            **{key: getattr(row, key) for key in RepView.model_fields if key != "open_leads"},
            open_leads=counts.get(row.id, 0),
        )
        for row in rows
    ]


# Every route needs the database (a rep's token too): while it is down, they answer 503.
router = APIRouter(prefix="/v1", tags=["router"], responses=problem_responses(503))
admin = APIRouter(dependencies=[Depends(require_admin)], responses=problem_responses(401, 422))


@router.get("/me", summary="Who the token belongs to", responses=problem_responses(401))
async def me(caller: CallerDep) -> Caller:
    return caller


@admin.post("/reps", status_code=201, summary="Add a rep; the answer carries their token once")
async def create_rep(service: Service, body: NewRep) -> CreatedRep:
    _known_team(service, body.team)
    values = body.model_dump(exclude_none=True)
    values.setdefault("capacity", service.router.routing.default_capacity)
    rep_id, token = await service.create_rep(values)
    [view] = await _rep_views(service, rep_id)
    return CreatedRep(**view.model_dump(), token=token)


@admin.get("/reps", summary="The roster: capacity, open leads, availability")
async def list_reps(service: Service) -> list[RepView]:
    return await _rep_views(service)


@admin.patch("/reps/{rep_id}", summary="Change a rep", responses=problem_responses(404))
async def update_rep(service: Service, rep_id: uuid.UUID, body: RepFields) -> RepView:
    _known_team(service, body.team)
    try:
        await service.update_rep(str(rep_id), body.changes())
    except RepNotFound as error:
        raise ProblemError(404, f"no rep {rep_id}") from error
    [view] = await _rep_views(service, str(rep_id))
    return view


@admin.delete(
    "/reps/{rep_id}",
    summary="Deactivate a rep; their open leads are reassigned",
    responses=problem_responses(404),
)
async def deactivate_rep(service: Service, rep_id: uuid.UUID) -> RepView:
    return await update_rep(service, rep_id, RepFields(active=False))


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


@router.get(
    "/reps/{rep_id}/queue",
    summary="A rep's open leads, oldest SLA first",
    responses=problem_responses(401, 403),
)
async def rep_queue(service: Service, caller: CallerDep, rep_id: uuid.UUID) -> list[QueuedLead]:
    if not caller.admin and caller.rep_id != str(rep_id):
        raise ProblemError(403, "a rep sees only their own queue")
    async with service.router.engine.connect() as connection:
        rows = await repository.open_leads_of(connection, str(rep_id))
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
        )
        for row in rows
    ]


class Rejection(BaseModel):
    reason: str = Field(
        min_length=1,
        max_length=64,
        pattern=NO_NUL,
        description="a nurture reason of the definitions",
    )
    note: str | None = Field(default=None, max_length=2000, pattern=NO_NUL)


class Qualification(BaseModel):
    budget: str | None = Field(default=None, max_length=500, pattern=NO_NUL)
    timeframe: str | None = Field(default=None, max_length=500, pattern=NO_NUL)
    requirements: str | None = Field(default=None, max_length=2000, pattern=NO_NUL)
    authority: str | None = Field(default=None, max_length=500, pattern=NO_NUL)


class Closing(BaseModel):
    outcome: Literal["won", "lost"]
    amount: float | None = Field(default=None, ge=0, allow_inf_nan=False)


class ActionResult(BaseModel):
    lead_id: str
    action: str
    stage: str


async def _act(
    service: SalesDesk, caller: Caller, lead_id: uuid.UUID, action: str, details: dict[str, Any]
) -> ActionResult:
    if caller.rep_id is None:
        raise ProblemError(403, "only the rep who owns the lead acts on it")
    try:
        return ActionResult(**await service.act(caller.rep_id, str(lead_id), action, details))
    except LeadNotFound as error:
        raise ProblemError(404, f"no lead {lead_id} with sales") from error
    except NotYourLead as error:
        raise ProblemError(403, "this lead is assigned to another rep") from error
    except ActionNotAllowed as error:
        raise ProblemError(409, str(error), allowed=error.allowed) from error
    except MissingRequirements as error:
        raise ProblemError(
            422,
            str(error),
            errors=[
                InvalidField(field=field, message="is required for this stage")
                for field in error.fields
            ],
        ) from error
    except UnknownReason as error:
        raise ProblemError(
            422,
            str(error),
            errors=[
                InvalidField(field="reason", message=f"must be one of {', '.join(error.known)}")
            ],
        ) from error


ACTION_RESPONSES = problem_responses(401, 403, 404, 409, 422)


@router.post(
    "/leads/{lead_id}/accept",
    summary="Accept a lead (stops the SLA clock)",
    responses=ACTION_RESPONSES,
)
async def accept(service: Service, caller: CallerDep, lead_id: uuid.UUID) -> ActionResult:
    return await _act(service, caller, lead_id, "accept", {})


@router.post(
    "/leads/{lead_id}/reject",
    summary="Return a lead to marketing with a reason",
    responses=ACTION_RESPONSES,
)
async def reject(
    service: Service, caller: CallerDep, lead_id: uuid.UUID, body: Rejection
) -> ActionResult:
    return await _act(service, caller, lead_id, "reject", body.model_dump(exclude_none=True))


@router.post(
    "/leads/{lead_id}/qualify",
    summary="Record budget, timeframe, requirements",
    responses=ACTION_RESPONSES,
)
async def qualify(
    service: Service, caller: CallerDep, lead_id: uuid.UUID, body: Qualification
) -> ActionResult:
    return await _act(service, caller, lead_id, "qualify", body.model_dump(exclude_none=True))


@router.post(
    "/leads/{lead_id}/convert", summary="Convert to an opportunity", responses=ACTION_RESPONSES
)
async def convert(
    service: Service, caller: CallerDep, lead_id: uuid.UUID, body: Qualification
) -> ActionResult:
    return await _act(service, caller, lead_id, "convert", body.model_dump(exclude_none=True))


@router.post("/leads/{lead_id}/close", summary="Close as won or lost", responses=ACTION_RESPONSES)
async def close(
    service: Service, caller: CallerDep, lead_id: uuid.UUID, body: Closing
) -> ActionResult:
    return await _act(
        service,
        caller,
        lead_id,
        body.outcome,
        body.model_dump(exclude_none=True, exclude={"outcome"}),
    )


async def _handoffs_after(
    service: SalesDesk, seq: int, rep: uuid.UUID | None, team: str | None
) -> list[Any]:
    async with service.router.engine.connect() as connection:
        return await repository.handoffs_after(connection, seq, str(rep) if rep else None, team)


def _server_sent(row: Any) -> str:
    return f"id: {row.seq}\nevent: {row.kind}\ndata: {json.dumps(row.envelope)}\n\n"


@router.get(
    "/handoffs/stream",
    summary="Server-Sent Events of lead.handoffs (resume with Last-Event-ID)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **problem_responses(401, 403, 422)},
)
async def handoff_stream(
    request: Request,
    service: Service,
    caller: CallerDep,
    rep: Annotated[uuid.UUID | None, Query(description="only this rep's hand-offs")] = None,
    team: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
    last_event_id: Annotated[int | None, Header(ge=0, le=MAX_SEQ)] = None,
) -> StreamingResponse:
    if not caller.admin:
        if rep is not None and str(rep) != caller.rep_id:
            raise ProblemError(403, "a rep streams only their own hand-offs")
        rep = uuid.UUID(caller.rep_id)
    seq = last_event_id or 0
    # Read once before the stream starts, so that a database outage is a 503, not a 200.
    first = await _handoffs_after(service, seq, rep, team)

    async def events() -> AsyncIterator[str]:
        yield "retry: 1000\n\n"
        rows, after = first, seq
        while True:
            for row in rows:
                after = row.seq
                yield _server_sent(row)
            if await request.is_disconnected():
                return
            if not rows:
                await asyncio.sleep(STREAM_POLL_SECONDS)
            try:
                rows = await _handoffs_after(service, after, rep, team)
            except Exception as error:
                if not is_database_outage(error):
                    raise
                # A browser's EventSource gives up on a 503: keep its stream open instead,
                # and catch up once the database is back.
                rows = []
                await asyncio.sleep(STREAM_OUTAGE_POLL_SECONDS)

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


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
    200: {"content": {"application/json": {}, "text/csv": {}}}
}


def _answer(request: Request, report: BaseModel, sections: dict[str, list[BaseModel]]) -> Response:
    """JSON, or CSV when the caller accepts text/csv."""
    if "text/csv" in request.headers.get("accept", ""):
        return Response(sections_csv(sections), media_type="text/csv")
    return JSONResponse(report.model_dump(mode="json"))


@admin.get(
    "/reports/funnel",
    summary="The funnel: leads per stage, conversion, time in stage",
    responses=REPORT_RESPONSES,
)
async def funnel(
    request: Request, service: Service, period: PeriodDep, by: Slicing = "all"
) -> Response:
    router_service = service.router
    report = await funnel_report(
        router_service.engine, router_service.loaded.definitions, period.start, period.end, by
    )
    return _answer(request, report, {"funnel": funnel_rows(report)})


@admin.get(
    "/reports/speed-to-lead",
    summary="Minutes from hand-off to accept, per rep and team",
    responses=REPORT_RESPONSES,
)
async def speed_to_lead(request: Request, service: Service, period: PeriodDep) -> Response:
    router_service = service.router
    report = await speed_to_lead_report(
        router_service.engine, router_service.loaded.definitions, period.start, period.end
    )
    return _answer(request, report, {"rep": list(report.by_rep), "team": list(report.by_team)})


@admin.get(
    "/reports/nurture",
    summary="Why leads come back, and what campaigns bring in the end",
    responses=REPORT_RESPONSES,
)
async def nurture(request: Request, service: Service, period: PeriodDep) -> Response:
    router_service = service.router
    report = await nurture_report(
        router_service.engine, router_service.loaded.definitions, period.start, period.end
    )
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


router.include_router(admin)

"""The roster (admin) and each rep's queue."""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter
from pydantic import BaseModel, Field, field_validator

from services.router.api.dependencies import Caller, CallerDep, Desk, Queries, admin_routes
from services.router.api.fields import OutboundUrl
from services.router.queries import QueuedLead, RepView
from shared.events import NO_NUL, EmailAddress
from shared.http import StorableTime
from shared.problems import ProblemError, problem_responses

_CLEARED_BY_NULL = frozenset({"out_of_office_until", "email", "chat_webhook_url"})


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
    email: EmailAddress | None = Field(
        default=None, description="where the rep is notified of hand-offs and reminders"
    )
    chat_webhook_url: OutboundUrl | None = Field(
        default=None, description="the rep's own Slack-compatible incoming webhook"
    )

    def changes(self) -> dict[str, Any]:
        """The fields the caller sent; null leaves a field as it is, but clears an absence
        or an address."""
        return {
            key: value
            for key, value in self.model_dump(exclude_unset=True).items()
            if value is not None or key in _CLEARED_BY_NULL
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


class CreatedRep(RepView):
    token: str = Field(description="the rep's bearer token: shown only now")


routes = APIRouter()
roster = admin_routes()


@routes.get("/me", summary="Who the token belongs to", responses=problem_responses(401))
async def me(caller: CallerDep) -> Caller:
    return caller


@routes.get(
    "/reps/{rep_id}/queue",
    summary="A rep's open leads, oldest SLA first",
    responses=problem_responses(401, 403),
)
async def rep_queue(queries: Queries, caller: CallerDep, rep_id: uuid.UUID) -> list[QueuedLead]:
    if not caller.admin and caller.rep_id != str(rep_id):
        raise ProblemError(403, "a rep sees only their own queue")
    return await queries.queue_of(str(rep_id))


@roster.post("/reps", status_code=201, summary="Add a rep; the answer carries their token once")
async def create_rep(desk: Desk, queries: Queries, body: NewRep) -> CreatedRep:
    rep_id, token = await desk.create_rep(body.model_dump(exclude_none=True))
    [view] = await queries.reps(rep_id)
    return CreatedRep(**view.model_dump(), token=token)


@roster.get("/reps", summary="The roster: capacity, open leads, availability")
async def list_reps(queries: Queries) -> list[RepView]:
    return await queries.reps()


@roster.patch("/reps/{rep_id}", summary="Change a rep", responses=problem_responses(404))
async def update_rep(desk: Desk, queries: Queries, rep_id: uuid.UUID, body: RepFields) -> RepView:
    await desk.update_rep(str(rep_id), body.changes())
    [view] = await queries.reps(str(rep_id))
    return view


@roster.delete(
    "/reps/{rep_id}",
    summary="Deactivate a rep; their open leads are reassigned",
    responses=problem_responses(404),
)
async def deactivate_rep(desk: Desk, queries: Queries, rep_id: uuid.UUID) -> RepView:
    return await update_rep(desk, queries, rep_id, RepFields(active=False))

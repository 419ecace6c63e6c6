"""What a rep does to their leads: accept, reject, qualify, convert, close."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from services.router.api.dependencies import Caller, CallerDep, Desk
from services.router.domain import Action
from shared.events import NO_NUL
from shared.problems import ProblemError, problem_responses


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
    desk: Desk, caller: Caller, lead_id: uuid.UUID, action: Action, details: dict[str, Any]
) -> ActionResult:
    if caller.rep_id is None:
        raise ProblemError(403, "only the rep who owns the lead acts on it")
    stage = await desk.act(caller.rep_id, str(lead_id), action, details)
    return ActionResult(lead_id=str(lead_id), action=action, stage=stage)


ACTION_RESPONSES = problem_responses(401, 403, 404, 409, 422)
routes = APIRouter()


@routes.post(
    "/leads/{lead_id}/accept",
    summary="Accept a lead (stops the SLA clock)",
    responses=ACTION_RESPONSES,
)
async def accept(desk: Desk, caller: CallerDep, lead_id: uuid.UUID) -> ActionResult:
    return await _act(desk, caller, lead_id, "accept", {})


@routes.post(
    "/leads/{lead_id}/reject",
    summary="Return a lead to marketing with a reason",
    responses=ACTION_RESPONSES,
)
async def reject(
    desk: Desk, caller: CallerDep, lead_id: uuid.UUID, body: Rejection
) -> ActionResult:
    return await _act(desk, caller, lead_id, "reject", body.model_dump(exclude_none=True))


@routes.post(
    "/leads/{lead_id}/qualify",
    summary="Record budget, timeframe, requirements",
    responses=ACTION_RESPONSES,
)
async def qualify(
    desk: Desk, caller: CallerDep, lead_id: uuid.UUID, body: Qualification
) -> ActionResult:
    return await _act(desk, caller, lead_id, "qualify", body.model_dump(exclude_none=True))


@routes.post(
    "/leads/{lead_id}/convert", summary="Convert to an opportunity", responses=ACTION_RESPONSES
)
async def convert(
    desk: Desk, caller: CallerDep, lead_id: uuid.UUID, body: Qualification
) -> ActionResult:
    return await _act(desk, caller, lead_id, "convert", body.model_dump(exclude_none=True))


@routes.post("/leads/{lead_id}/close", summary="Close as won or lost", responses=ACTION_RESPONSES)
async def close(desk: Desk, caller: CallerDep, lead_id: uuid.UUID, body: Closing) -> ActionResult:
    details = body.model_dump(exclude_none=True, exclude={"outcome"})
    return await _act(desk, caller, lead_id, body.outcome, details)

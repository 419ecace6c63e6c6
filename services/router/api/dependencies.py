"""What the router's routes are given: the sales desk, the read side, the caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from services.router.actions import SalesDesk
from services.router.queries import RouterQueries
from services.router.queries.reporting import ReportQueries
from shared.auth import bearer_token, require_admin, same_secret
from shared.definitions import LoadedDefinitions
from shared.http import from_app_state
from shared.problems import ProblemError, problem_responses

Desk = Annotated[SalesDesk, from_app_state("desk")]
Queries = Annotated[RouterQueries, from_app_state("queries")]
Reports = Annotated[ReportQueries, from_app_state("report_queries")]
Definitions = Annotated[LoadedDefinitions, from_app_state("definitions")]


class Caller(BaseModel):
    admin: bool
    rep_id: str | None


async def get_caller(request: Request, queries: Queries) -> Caller:
    """The admin key, or a rep's bearer token; anything else is 401.

    Browsers' EventSource cannot send headers, so the stream also takes `access_token`.
    """
    token = bearer_token(request.headers) or request.query_params.get("access_token")
    admin_key = request.app.state.settings.admin_key
    if token and admin_key and same_secret(token, admin_key):
        return Caller(admin=True, rep_id=None)
    rep_id = await queries.rep_for_token(token) if token else None
    if rep_id is None:
        raise ProblemError(
            401, "send a rep token or the admin key as Authorization: Bearer <token>"
        )
    return Caller(admin=False, rep_id=rep_id)


CallerDep = Annotated[Caller, Depends(get_caller)]


def admin_routes() -> APIRouter:
    """Routes only the admin key may call."""
    return APIRouter(dependencies=[Depends(require_admin)], responses=problem_responses(401, 422))

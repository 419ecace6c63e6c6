"""Scoring's HTTP routes (entrypoint): leads with their score breakdown, the definitions."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from services.scoring.handlers import ScoringService
from services.scoring.queries import LeadDetail, LeadPage, ScoringQueries
from services.scoring.shadow_api import shadow_router
from shared.auth import require_admin
from shared.definitions.render import document, to_html, to_markdown
from shared.events import NO_NUL
from shared.http import from_app_state
from shared.problems import ProblemError, problem_responses

Service = Annotated[ScoringService, from_app_state("scoring")]
Queries = Annotated[ScoringQueries, from_app_state("queries")]
StageKey = Annotated[str | None, Query(max_length=64, pattern=r"^[a-z0-9][a-z0-9_\-.]*$")]

router = APIRouter(prefix="/v1", tags=["scoring"])
# Leads live in the database: while it is down, their routes answer 503.
leads_router = APIRouter(
    dependencies=[Depends(require_admin)], responses=problem_responses(401, 422, 503)
)


@leads_router.get(
    "/leads/{lead_id}",
    summary="A lead's score, grade and stage, with which rule gave which points",
    responses=problem_responses(404),
)
async def get_lead(
    service: Service, queries: Queries, lead_id: Annotated[uuid.UUID, Path()]
) -> LeadDetail:
    detail = await queries.lead_detail(
        service.model, service.loaded.version, str(lead_id), service.now()
    )
    if detail is None:
        raise ProblemError(404, f"no lead {lead_id}")
    return detail


@leads_router.get("/leads", summary="Leads by stage, grade, campaign or email")
async def list_leads(
    queries: Queries,
    stage: StageKey = None,
    grade: Annotated[str | None, Query(pattern=r"^[A-Z][A-Z0-9+\-]?$")] = None,
    campaign: StageKey = None,
    email: Annotated[str | None, Query(max_length=254, pattern=NO_NUL)] = None,
    after: Annotated[
        uuid.UUID | None, Query(description="next_cursor of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> LeadPage:
    return await queries.lead_page(
        stage=stage,
        grade=grade,
        campaign=campaign,
        email=email,
        after=str(after) if after else None,
        limit=limit,
    )


class ActiveDefinitions(BaseModel):
    version: str
    name: str
    source: str
    document_markdown: str
    definitions: dict[str, Any]


@router.get("/definitions", summary="The active lead definitions, their version and document")
async def get_definitions(service: Service) -> ActiveDefinitions:
    loaded = service.loaded
    return ActiveDefinitions(
        version=loaded.version,
        name=loaded.definitions.name,
        source=loaded.source.name,
        document_markdown=to_markdown(document(loaded)),
        definitions=loaded.definitions.model_dump(mode="json"),
    )


@router.get(
    "/definitions/document",
    summary="The active lead definitions as a page for marketing and sales",
    response_class=HTMLResponse,
)
async def get_definitions_document(service: Service) -> HTMLResponse:
    return HTMLResponse(to_html(document(service.loaded)))


router.include_router(leads_router)
router.include_router(shadow_router)

"""Scoring's shadow-run routes (entrypoint): start, read, stop, promote, report."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from services.scoring.domain.shadow import ShadowReport, ShadowRun
from services.scoring.shadow import (
    DefinitionsNotWritable,
    NoShadowRun,
    ShadowConflict,
    ShadowRuns,
)
from shared.auth import require_admin
from shared.definitions import DefinitionsError
from shared.events import NO_NUL
from shared.http import from_app_state
from shared.problems import InvalidField, problem_response, problem_responses

Shadow = Annotated[ShadowRuns, from_app_state("shadow")]
MAX_DOCUMENT = 256 * 1024

shadow_router = APIRouter(
    prefix="/definitions/shadow",
    tags=["shadow runs"],
    dependencies=[Depends(require_admin)],
    responses=problem_responses(401, 422, 503),
)


class ShadowStart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    document: str = Field(
        max_length=MAX_DOCUMENT,
        description="the YAML text of a complete candidate lead-definitions file",
    )
    label: str | None = Field(
        default=None, max_length=200, pattern=NO_NUL, description="why this candidate"
    )


class ShadowPromoted(BaseModel):
    run: ShadowRun
    definitions_file: str
    previous_definitions_file: str
    note: str = Field(description="what the promotion leaves to do")


def _problem_for(error: Exception) -> JSONResponse:
    """The problem+json answer to what a shadow-run action refused: the one place that maps
    those errors to a status."""
    match error:
        case NoShadowRun():
            return problem_response(404, str(error))
        case ShadowConflict() | DefinitionsNotWritable():
            return problem_response(409, str(error))
        case DefinitionsError():
            return problem_response(
                422,
                f"the candidate definitions have {len(error.found)} problem(s)",
                errors=[
                    InvalidField(
                        field=".".join(filter(None, ("document", problem.path))),
                        message=f"line {problem.line}: {problem.message}"
                        if problem.line
                        else problem.message,
                    )
                    for problem in error.found
                ],
            )
    raise TypeError(f"{type(error).__name__} is not an error of shadow runs")


def install_shadow_errors(app: FastAPI) -> None:
    async def answer(_: Request, error: Exception) -> JSONResponse:
        return _problem_for(error)

    for kind in (NoShadowRun, ShadowConflict, DefinitionsNotWritable, DefinitionsError):
        app.add_exception_handler(kind, answer)


@shadow_router.post(
    "",
    status_code=201,
    summary="Start a shadow run: score live traffic by candidate definitions too, emit nothing",
    responses=problem_responses(409),
)
async def start_shadow(shadow: Shadow, body: ShadowStart) -> ShadowRun:
    return await shadow.start(body.document, body.label)


@shadow_router.get(
    "", summary="The shadow run going on, else the latest one", responses=problem_responses(404)
)
async def get_shadow(shadow: Shadow) -> ShadowRun:
    return await shadow.find()


@shadow_router.get("/history", summary="Past shadow runs, the latest first")
async def shadow_history(
    shadow: Shadow, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> list[ShadowRun]:
    return await shadow.history(limit)


@shadow_router.get(
    "/report",
    summary="Candidate against active: hand-offs both ways, grade shifts, load per team, "
    "precision against sales' verdicts",
    responses=problem_responses(404),
)
async def shadow_report(
    shadow: Shadow,
    run: Annotated[uuid.UUID | None, Query(description="a run's id; default: the latest")] = None,
) -> ShadowReport:
    return await shadow.report(str(run) if run else None)


@shadow_router.post(
    "/stop",
    summary="Stop the shadow run going on; its report is kept",
    responses=problem_responses(409),
)
async def stop_shadow(shadow: Shadow) -> ShadowRun:
    return await shadow.stop()


@shadow_router.post(
    "/promote",
    summary="Make the latest shadow run's candidate the active definitions",
    responses=problem_responses(409),
)
async def promote_shadow(shadow: Shadow) -> ShadowPromoted:
    run, kept = await shadow.promote()
    return ShadowPromoted(
        run=run,
        definitions_file=str(shadow.definitions_path),
        previous_definitions_file=str(kept),
        note=f"scoring now scores by {run.version}; every scoring and router instance that "
        "reads this file switches within seconds; commit the file to keep it",
    )

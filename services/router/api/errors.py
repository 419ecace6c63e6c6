"""The router's domain errors as HTTP problems: the one place that maps them to a status."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.router.domain import (
    ActionNotAllowed,
    LeadNotFound,
    MissingRequirements,
    NotYourLead,
    RepNotFound,
    UnknownReason,
    UnknownTeam,
)
from shared.problems import InvalidField, problem_response

DOMAIN_ERRORS = (
    LeadNotFound,
    RepNotFound,
    NotYourLead,
    ActionNotAllowed,
    MissingRequirements,
    UnknownReason,
    UnknownTeam,
)


def problem_for(error: Exception) -> JSONResponse:
    """The problem+json answer to a domain error."""
    match error:
        case LeadNotFound():
            return problem_response(404, f"no lead {error} with sales")
        case RepNotFound():
            return problem_response(404, f"no rep {error}")
        case NotYourLead():
            return problem_response(403, "this lead is assigned to another rep")
        case ActionNotAllowed():
            return problem_response(409, str(error), allowed=error.allowed)
        case MissingRequirements():
            required = "is required for this stage"
            fields = [InvalidField(field=field, message=required) for field in error.fields]
            return problem_response(422, str(error), errors=fields)
        case UnknownReason() | UnknownTeam():
            field = "reason" if isinstance(error, UnknownReason) else "team"
            known = InvalidField(field=field, message=f"must be one of {', '.join(error.known)}")
            return problem_response(422, str(error), errors=[known])
    raise TypeError(f"{type(error).__name__} is not a domain error of the router")


def install_domain_errors(app: FastAPI) -> None:
    async def answer(_: Request, error: Exception) -> JSONResponse:
        return problem_for(error)

    for kind in DOMAIN_ERRORS:
        app.add_exception_handler(kind, answer)

"""The router's domain errors as HTTP problems: the one place that maps them to a status."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.router.domain import (
    ActionNotAllowed,
    DeliveryNotFinished,
    LeadNotFound,
    MissingRequirements,
    NotYourLead,
    RepNotFound,
    SubscriptionNotFound,
    UnknownReason,
    UnknownTeam,
)
from services.router.domain.links import LinkRejected
from shared.problems import InvalidField, problem_response

DOMAIN_ERRORS = (
    LeadNotFound,
    RepNotFound,
    NotYourLead,
    ActionNotAllowed,
    MissingRequirements,
    UnknownReason,
    UnknownTeam,
    SubscriptionNotFound,
    DeliveryNotFinished,
    LinkRejected,
)


# Errors answered with a status and a sentence alone.
_PLAIN: dict[type[Exception], tuple[int, Callable[[Exception], str]]] = {
    LeadNotFound: (404, lambda error: f"no lead {error} with sales"),
    RepNotFound: (404, lambda error: f"no rep {error}"),
    NotYourLead: (403, lambda _: "this lead is assigned to another rep"),
    SubscriptionNotFound: (404, lambda error: f"no subscription {error} or no such delivery"),
    DeliveryNotFinished: (409, lambda error: f"delivery {error} is still being sent"),
    LinkRejected: (403, str),
}


def problem_for(error: Exception) -> JSONResponse:
    """The problem+json answer to a domain error."""
    if type(error) in _PLAIN:
        status, sentence = _PLAIN[type(error)]
        return problem_response(status, sentence(error))
    match error:
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

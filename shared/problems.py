"""RFC 9457 problem details: one helper for every error leadflow answers over HTTP."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"


class InvalidField(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """The problem+json body (RFC 9457) with the path of each invalid value in `errors`."""

    model_config = ConfigDict(extra="allow")  # RFC 9457 extension members, e.g. `allowed`

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: list[InvalidField] | None = None


class ProblemError(Exception):
    """Raise anywhere in a request to answer a problem+json with this status."""

    def __init__(
        self,
        status: int,
        detail: str | None = None,
        *,
        errors: list[InvalidField] | None = None,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors
        self.headers = dict(headers or {})
        self.extensions = extensions


def field_path(location: Sequence[int | str]) -> str:
    """`("body", "contact", "email")` -> `body.contact.email`; list indexes as `[3]`."""
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def invalid_fields(
    errors: Iterable[Mapping[str, Any]], prefix: Sequence[int | str] = ()
) -> list[InvalidField]:
    """Pydantic errors as `InvalidField`s, each location under `prefix`."""
    return [
        InvalidField(field=field_path([*prefix, *error["loc"]]), message=str(error["msg"]))
        for error in errors
    ]


def problem_response(
    status: int,
    detail: str | None = None,
    *,
    errors: list[InvalidField] | None = None,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    problem = Problem(
        title=HTTPStatus(status).phrase, status=status, detail=detail, errors=errors, **extensions
    )
    return JSONResponse(
        problem.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=dict(headers or {}),
    )


def validation_problem(error: ValidationError | RequestValidationError) -> JSONResponse:
    errors = list(error.errors())
    if any(err.get("type") == "json_invalid" for err in errors):
        return problem_response(400, "the body is not valid JSON")
    return problem_response(422, "some fields are invalid", errors=invalid_fields(errors))


def install_problem_handlers(app: FastAPI) -> None:
    async def on_problem(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ProblemError)
        return problem_response(
            exc.status, exc.detail, errors=exc.errors, headers=exc.headers, **exc.extensions
        )

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError | ValidationError)
        return validation_problem(exc)

    async def on_http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return problem_response(exc.status_code, str(exc.detail), headers=exc.headers)

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries documenting problem+json for these statuses."""
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_JSON: {"schema": Problem.model_json_schema()}},
        }
        for status in statuses
    }

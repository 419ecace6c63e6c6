"""RFC 9457 problem details: one helper for every error leadflow answers over HTTP."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.paths import field_path

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


def invalid_fields(
    errors: Iterable[Mapping[str, Any]], prefix: Sequence[int | str] = ()
) -> list[InvalidField]:
    """Pydantic errors as `InvalidField`s, each location under `prefix`."""
    return [
        InvalidField(field=field_path([*prefix, *error["loc"]]), message=str(error["msg"]))
        for error in errors
    ]


class ProblemResponse(JSONResponse):
    """A `Problem` as problem+json, written by pydantic (no dict in between)."""

    media_type = PROBLEM_JSON

    def render(self, content: Any) -> bytes:
        assert isinstance(content, Problem)
        return content.__pydantic_serializer__.to_json(content, exclude_none=True)


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
    return ProblemResponse(problem, status_code=status, headers=dict(headers or {}))


def validation_problem(error: ValidationError | RequestValidationError) -> JSONResponse:
    errors = list(error.errors())
    if any(err.get("type") == "json_invalid" for err in errors):
        return problem_response(400, "the body is not valid JSON")
    # FastAPI hands a body it did not parse as JSON (another media type) to validation as bytes.
    if any(
        tuple(err["loc"]) == ("body",) and isinstance(err.get("input"), bytes) for err in errors
    ):
        return problem_response(415, "send the body as application/json")
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


COMPONENTS = "#/components/schemas/"
RETRY_AFTER_HEADER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again",
        "schema": {"type": "integer", "minimum": 0},
    }
}
# Problem models that responses refer to by name, so the document can define each once.
_DOCUMENTED_MODELS: dict[str, type[Problem]] = {Problem.__name__: Problem}


def problem_responses(
    *statuses: int, model: type[Problem] = Problem
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries documenting problem+json for these statuses.

    The schema is a reference to `#/components/schemas/<model>`; `describe_problems`
    defines it in the served document.
    """
    _DOCUMENTED_MODELS[model.__name__] = model
    return {status: _problem_response(status, model.__name__) for status in statuses}


def _problem_response(status: int, model_name: str = Problem.__name__) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": HTTPStatus(status).phrase,
        "content": {PROBLEM_JSON: {"schema": {"$ref": f"{COMPONENTS}{model_name}"}}},
    }
    if status == 503:
        response["headers"] = RETRY_AFTER_HEADER
    return response


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or media_type.endswith("+json")


def _body_statuses(operation: Mapping[str, Any]) -> list[int]:
    """What any route with a request body can answer about the body itself."""
    media_types = list(operation.get("requestBody", {}).get("content", {}))
    if not media_types:
        return []
    if any(_is_json(media_type) for media_type in media_types):
        return [400, 413, 415, 422]  # not JSON, too large, another media type, invalid
    return [413, 415]


def _document_operation(operation: dict[str, Any]) -> None:
    responses = operation["responses"]
    # FastAPI documents its own 422 JSON on every route with parameters; ours is a problem.
    if "422" in responses and PROBLEM_JSON not in responses["422"].get("content", {}):
        responses["422"] = _problem_response(422)
    for status in _body_statuses(operation):
        responses.setdefault(str(status), _problem_response(status))


def _references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        reference = node.get("$ref")
        if isinstance(reference, str) and reference.startswith(COMPONENTS):
            yield reference.removeprefix(COMPONENTS)
        for value in node.values():
            yield from _references(value)
    elif isinstance(node, list):
        for value in node:
            yield from _references(value)


def _define_models(schemas: dict[str, Any], names: Iterable[str]) -> None:
    for name in names:
        model = _DOCUMENTED_MODELS.get(name)
        if model is None or name in schemas:
            continue
        schema = model.model_json_schema(mode="serialization", ref_template=COMPONENTS + "{model}")
        for nested, definition in schema.pop("$defs", {}).items():
            schemas.setdefault(nested, definition)
        schemas[name] = schema


def describe_problems(document: Mapping[str, Any]) -> dict[str, Any]:
    """`document` (an OpenAPI document) with every problem answer documented as problem+json.

    Adds what every route answers about its request (400/413/415/422 for a body, 422 for
    parameters) and defines the problem schemas the responses refer to.
    """
    described = copy.deepcopy(dict(document))
    for path_item in described.get("paths", {}).values():
        for operation in path_item.values():
            if isinstance(operation, dict) and "responses" in operation:
                _document_operation(operation)
    schemas: dict[str, Any] = described.setdefault("components", {}).setdefault("schemas", {})
    referenced = set(_references(described["paths"]))
    _define_models(schemas, referenced)
    if "HTTPValidationError" not in referenced:
        schemas.pop("HTTPValidationError", None)
        if "ValidationError" not in set(_references(schemas)):
            schemas.pop("ValidationError", None)
    return described

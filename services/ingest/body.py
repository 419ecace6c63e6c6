"""JSON request bodies: the media type checked, the JSON parsed, problems answered."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from starlette.requests import Request

from shared.media import body_media_type
from shared.problems import InvalidField, ProblemError


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or media_type.endswith("+json")


async def json_bytes(
    request: Request,
    *,
    accepts: Callable[[str], bool] = _is_json,
    expected: str = "application/json",
    headers: Mapping[str, str] | None = None,
) -> bytes:
    """The request's body, still encoded; 415 when its media type is not one `accepts`.
    `headers` go on that answer (a browser needs its CORS headers)."""
    if not accepts(body_media_type(request.headers.get("content-type"))):
        raise ProblemError(415, f"send the body as {expected}", headers=headers)
    return await request.body()


def decoded_json(body: bytes, headers: Mapping[str, str] | None = None) -> Any:
    """`body` parsed as JSON; 400 when it is not JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass  # the standard library reads more (NaN, a BOM, UTF-16) and says what is wrong
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ProblemError(400, f"the body is not valid JSON: {error}", headers=headers) from error


async def json_body(request: Request) -> Any:
    """The request's JSON body: 415 for another media type, 400 when it is not JSON."""
    return decoded_json(await json_bytes(request))


def json_object(
    body: Any, field: str = "body", headers: Mapping[str, str] | None = None
) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ProblemError(
            422,
            "a JSON object is expected",
            errors=[InvalidField(field=field, message="must be an object")],
            headers=headers,
        )
    return body

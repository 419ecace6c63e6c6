"""Ingest's browser edge (entrypoint): the embeddable snippet, and what web pages send.

Pages send with a *publishable* key, which anyone can read in the page's HTML. So it is
bound to the sites that may use it (their origins, checked on the preflight and on every
send), writes only the web types it was issued for, reads nothing, and is rate-limited per
key and client address. The key travels in the query string (`?key=pk_...`): a preflight
carries no body, and `navigator.sendBeacon` can set no header.

CORS is answered here rather than by Starlette's CORSMiddleware, which is global: the
server-to-server routes stay without CORS, and each key allows its own origins only.
"""

from __future__ import annotations

import math
import re
import time
from functools import cache
from importlib.resources import files
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Header, Query, Request
from fastapi.responses import Response
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import RateLimiter, SlidingWindowCounterRateLimiter

from services.ingest.api import Accepted, PublisherDep, SettingsDep, accepted_response
from services.ingest.body import decoded_json, json_bytes, json_object
from services.ingest.domain import Rejected, parse_interaction
from services.ingest.handlers import accept_interactions
from shared.events import Interaction
from shared.http import RETRY_AFTER_SECONDS
from shared.kafka import BrokerUnavailable
from shared.problems import (
    RETRY_AFTER_HEADER,
    InvalidField,
    ProblemError,
    problem_responses,
)
from shared.settings import PublishableKey, Settings

BROWSER_SOURCE = "/ingest/browser/events"
# Browser ids live in their own namespace: a page can never name another source's event.
BROWSER_ID_PREFIX = "browser:"
PREFLIGHT_MAX_AGE_SECONDS = 600
SNIPPET_MAX_AGE_SECONDS = 3600
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_BODY_TYPES = ("application/json", "text/plain")  # text/plain: what sendBeacon sends
_CHALLENGE = {"WWW-Authenticate": 'Key realm="leadflow-browser", param="key"'}


class JavaScriptResponse(Response):
    media_type = "text/javascript"


@cache
def snippet_source() -> bytes:
    return files("services.ingest").joinpath("static/snippet.js").read_bytes()


@cache
def _rate(limit: str) -> RateLimitItem:
    return parse(limit)


def browser_rejection(interaction: Interaction, key: PublishableKey) -> Rejected | None:
    """What a page may send: the key's web types, about the visitor its cookie names.

    A page view is anonymous; a person's details arrive only with a form submit. The time
    is the time of receipt (a visitor's clock proves nothing), and a campaign must be one
    the key was issued for, so that no page can push a lead into a campaign's fast lane.
    """
    channel, kind = interaction.channel_type
    if channel != "web" or kind not in key.types:
        kinds = ", ".join(f"web {allowed}" for allowed in key.types)
        message = f"this publishable key may send only {kinds}"
        return Rejected(403, [InvalidField(field="type", message=message)])
    if interaction.campaign is not None and interaction.campaign not in key.campaigns:
        message = "this key may not name this campaign"
        return Rejected(403, [InvalidField(field="campaign", message=message)])
    errors = []
    contact = interaction.contact
    if contact.anonymous_id is None:
        errors.append(("contact.anonymous_id", "is required: the visitor's first-party id"))
    elif kind == "page_view" and contact.model_dump(exclude_none=True).keys() != {"anonymous_id"}:
        errors.append(("contact", "a page view carries only the anonymous_id"))
    if interaction.time is not None:
        errors.append(("time", "is set by ingest to the time of receipt"))
    if interaction.id is not None and not _CLIENT_ID.match(interaction.id):
        errors.append(("id", "must be 1 to 64 letters, digits, '-' or '_'"))
    if errors:
        return Rejected(422, [InvalidField(field=field, message=msg) for field, msg in errors])
    return None


def _publishable_key(settings: Settings, key: str | None) -> tuple[str, PublishableKey]:
    site = settings.publishable_keys.get(key) if key else None
    if key is None or site is None:
        detail = "a publishable key is required (?key=pk_...)" if not key else "unknown key"
        raise ProblemError(401, detail, headers=_CHALLENGE)
    return key, site


def _cors_headers(site: PublishableKey, origin: str | None) -> dict[str, str]:
    """CORS headers for a page of one of the key's sites; anyone else gets a 403 without."""
    if origin is None or origin not in site.origins:
        detail = "only pages of the key's sites (by their Origin) may use this key"
        raise ProblemError(403, detail, headers={"Vary": "Origin"})
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Expose-Headers": "Retry-After",
        "Vary": "Origin",
    }


def _within_rate_limit(
    request: Request, key: str, site: PublishableKey, cors: dict[str, str]
) -> None:
    limiter: RateLimiter = request.app.state.browser_rate_limiter
    rate = _rate(site.rate_limit)
    address = request.client.host if request.client else "unknown"
    if limiter.hit(rate, key, address):
        return
    reset_at = limiter.get_window_stats(rate, key, address).reset_time
    retry_after = max(1, math.ceil(reset_at - time.time()))
    raise ProblemError(
        429,
        f"more than {site.rate_limit} from this address; try again later",
        headers={**cors, "Retry-After": str(retry_after)},
    )


async def _json_object(request: Request, cors: dict[str, str]) -> dict[str, Any]:
    body = await json_bytes(
        request,
        accepts=_BODY_TYPES.__contains__,
        expected="application/json or text/plain",
        headers=cors,
    )
    return json_object(decoded_json(body, cors), headers=cors)


KeyParam = Annotated[str | None, Query(description="the publishable key (`pk_...`) of the site")]
OriginHeader = Annotated[str | None, Header(description="set by the browser: the page's origin")]
_PROBLEMS_OF_A_PAGE = problem_responses(401, 403)
_TOO_MANY = {**problem_responses(429)[429], "headers": RETRY_AFTER_HEADER}
_INTERACTION = {"$ref": "#/components/schemas/Interaction"}

router = APIRouter(prefix="/v1", tags=["browser"])


@router.get(
    "/snippet.js",
    summary="The script a site embeds with its publishable key",
    response_class=JavaScriptResponse,
    responses={200: {"description": "the snippet (no dependencies)"}},
)
async def get_snippet() -> JavaScriptResponse:
    return JavaScriptResponse(
        snippet_source(),
        headers={
            "Cache-Control": f"public, max-age={SNIPPET_MAX_AGE_SECONDS}",
            "Cross-Origin-Resource-Policy": "cross-origin",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.options(
    "/browser/events",
    status_code=204,
    summary="CORS preflight: answered only for a page on one of the key's origins",
    response_class=Response,
    responses={204: {"description": "this origin may POST with this key"}, **_PROBLEMS_OF_A_PAGE},
)
async def preflight_browser_event(
    settings: SettingsDep,
    key: KeyParam = None,
    origin: OriginHeader = None,
    access_control_request_method: Annotated[str | None, Header()] = None,
    access_control_request_headers: Annotated[str | None, Header()] = None,
) -> Response:
    _, site = _publishable_key(settings, key)
    cors = _cors_headers(site, origin)
    requested = {
        name.strip().lower()
        for name in (access_control_request_headers or "").split(",")
        if name.strip()
    }
    if (access_control_request_method or "POST") != "POST" or not requested <= {"content-type"}:
        raise ProblemError(403, "only a POST with a Content-Type header is allowed")
    return Response(
        status_code=204,
        headers={
            **cors,
            "Access-Control-Allow-Methods": "POST",
            "Access-Control-Allow-Headers": "Content-Type",
            "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_SECONDS),
        },
    )


@router.post(
    "/browser/events",
    status_code=202,
    summary="A page view or form submit sent by a web page with a publishable key",
    description=(
        "The body is one interaction (as for `POST /v1/events`) of the web types the key"
        " allows, with `contact.anonymous_id`; `text/plain` is read as JSON (sendBeacon)."
        " The recorded id is the page's id prefixed with `browser:`."
    ),
    response_model=Accepted,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {media_type: {"schema": _INTERACTION} for media_type in _BODY_TYPES},
        }
    },
    responses={
        **problem_responses(400, 401, 403, 413, 415, 422, 503),
        429: _TOO_MANY,
    },
)
async def post_browser_event(
    request: Request,
    settings: SettingsDep,
    publisher: PublisherDep,
    key: KeyParam = None,
    origin: OriginHeader = None,
) -> Response:
    key, site = _publishable_key(settings, key)
    cors = _cors_headers(site, origin)
    _within_rate_limit(request, key, site, cors)
    raw = await _json_object(request, cors)
    interaction = parse_interaction(raw)
    if not isinstance(interaction, Rejected):
        interaction = browser_rejection(interaction, site) or interaction
    if isinstance(interaction, Rejected):
        errors = interaction.errors
        raise ProblemError(
            interaction.status, "the event was not accepted", errors=errors, headers=cors
        )
    if interaction.id is not None:
        raw = {**raw, "id": BROWSER_ID_PREFIX + interaction.id}
    try:
        [result] = await accept_interactions(
            [raw], publisher=publisher, source=BROWSER_SOURCE, allowed_channels=["web"]
        )
    except BrokerUnavailable as error:
        headers = {**cors, "Retry-After": str(RETRY_AFTER_SECONDS)}
        raise ProblemError(503, str(error), headers=headers) from error
    if result.status != 202 or result.id is None:
        raise ProblemError(
            result.status, "the event was not accepted", errors=result.errors, headers=cors
        )
    return accepted_response(result.id, headers=cors)


def install_browser_routes(app: FastAPI) -> None:
    """The snippet and the browser route, with a rate limiter in this process's memory."""
    app.state.browser_rate_limiter = SlidingWindowCounterRateLimiter(MemoryStorage())
    app.include_router(router)

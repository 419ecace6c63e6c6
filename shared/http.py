"""What every leadflow HTTP service has: health, readiness, metrics, body limits, problems."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from pydantic import AfterValidator, BaseModel
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.db import DATABASE_ERRORS, is_database_outage
from shared.kafka import BrokerUnavailable
from shared.problems import describe_problems, install_problem_handlers, problem_response

REQUESTS = Counter(
    "leadflow_http_requests_total",
    "HTTP requests by route and status",
    ["method", "route", "status"],
)
REQUEST_SECONDS = Histogram(
    "leadflow_http_request_seconds", "HTTP request duration by route", ["method", "route"]
)

RETRY_AFTER_SECONDS = 5


def from_app_state(name: str) -> Any:
    """A FastAPI dependency on what the service's bootstrap put in `app.state.<name>`:
    `Desk = Annotated[SalesDesk, from_app_state("desk")]`."""

    async def dependency(request: Request) -> Any:
        return getattr(request.app.state, name)

    return Depends(dependency)


def storable_time(moment: datetime) -> datetime:
    """A time the database can take: in UTC it must still fall within years 1 to 9999."""
    try:
        (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except OverflowError as error:
        raise ValueError("is outside the years 1 to 9999 in UTC") from error
    return moment


StorableTime = Annotated[datetime, AfterValidator(storable_time)]

ReadinessCheck = Callable[[], Awaitable[dict[str, bool]]]


class Readiness(BaseModel):
    status: Literal["ready", "not ready"]
    checks: dict[str, bool]


class _BodyTooLarge(Exception):
    pass


@cache
def _request_count(method: str, route: str, status: int) -> Any:
    return REQUESTS.labels(method, route, str(status))


@cache
def _request_duration(method: str, route: str) -> Any:
    return REQUEST_SECONDS.labels(method, route)


def _declared_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class RequestEdge:
    """What every request passes first: 413 for a body over the limit of its path prefix
    (declared or streamed), and a count and timing by route template (never by raw path:
    ids are unbounded).

    One pure ASGI layer rather than two: every layer costs each request a call and a
    wrapped `send`, and the hot ingest route answers in a few hundred microseconds.
    """

    def __init__(self, app: ASGIApp, limits: dict[str, int], default: int) -> None:
        self.app = app
        self.limits = sorted(limits.items(), key=lambda item: -len(item[0]))
        self.default = default

    def _limit(self, path: str) -> int:
        return next((size for prefix, size in self.limits if path.startswith(prefix)), self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: int | None = None

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            limit = self._limit(scope["path"])
            declared = _declared_length(scope["headers"])
            if declared is not None and declared > limit:
                await _too_large(limit, scope, receive, recording_send)
                return
            try:
                # A declared length is all the server reads; only a streamed body is counted.
                counted = receive if declared is not None else _counting(receive, limit)
                await self.app(scope, counted, recording_send)
            except _BodyTooLarge:
                if status is not None:
                    raise
                await _too_large(limit, scope, receive, recording_send)
        finally:
            template = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            _request_count(method, template, status or 500).inc()
            _request_duration(method, template).observe(time.perf_counter() - started)


def _counting(receive: Receive, limit: int) -> Receive:
    received = 0

    async def counting_receive() -> Message:
        nonlocal received
        message = await receive()
        received += len(message.get("body", b""))
        if received > limit:
            raise _BodyTooLarge
        return message

    return counting_receive


async def _too_large(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
    response = problem_response(413, f"the body is larger than {limit} bytes")
    await response(scope, receive, send)


def operations_router(readiness: ReadinessCheck) -> APIRouter:
    """`/healthz` (process up), `/readyz` (dependencies reachable), `/metrics` (Prometheus)."""
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Every dependency is reachable",
        response_model=Readiness,
        responses={503: {"model": Readiness, "description": "A dependency is not reachable"}},
    )
    async def readyz() -> JSONResponse:
        checks = await readiness()
        ready = all(checks.values())
        body = Readiness(status="ready" if ready else "not ready", checks=checks)
        return JSONResponse(body.model_dump(), status_code=200 if ready else 503)

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


def unavailable(detail: str) -> Response:
    """503 with Retry-After: a dependency is down, the same request may succeed later."""
    return problem_response(503, detail, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def answer_database_outages(app: FastAPI) -> None:
    """While the database cannot be reached, requests that need it answer 503, not 500."""

    async def on_database_error(_: Request, error: Exception) -> Response:
        if not is_database_outage(error):
            raise error
        return unavailable("the database is not reachable; try again shortly")

    for kind in DATABASE_ERRORS:
        app.add_exception_handler(kind, on_database_error)


def serve_described_openapi(app: FastAPI) -> None:
    """Serve `/openapi.json` as the app builds it, with every problem answer documented.

    The document is described when served rather than in `app.openapi`, which a service
    may replace with its own (ingest adds the schema its raw-body routes refer to).
    """

    if app.openapi_url is None:
        return

    async def openapi_document(_: Request) -> JSONResponse:
        return JSONResponse(describe_problems(app.openapi()))

    routes = app.router.routes
    served = next(
        index
        for index, route in enumerate(routes)
        if isinstance(route, Route) and route.path == app.openapi_url
    )
    routes[served] = Route(app.openapi_url, openapi_document, include_in_schema=False)


def install_common(
    app: FastAPI,
    readiness: ReadinessCheck,
    *,
    body_limits: dict[str, int],
    default_body_limit: int = 64 * 1024,
) -> None:
    """Wire the pieces every service shares into `app`."""
    install_problem_handlers(app)
    serve_described_openapi(app)

    async def on_broker_unavailable(_: object, exc: Exception) -> Response:
        return unavailable(str(exc))

    app.add_exception_handler(BrokerUnavailable, on_broker_unavailable)
    app.include_router(operations_router(readiness))
    app.add_middleware(RequestEdge, limits=body_limits, default=default_body_limit)

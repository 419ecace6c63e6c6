"""What every leadflow HTTP service has: health, readiness, metrics, body limits, problems."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.kafka import BrokerUnavailable
from shared.problems import install_problem_handlers, problem_response

REQUESTS = Counter(
    "leadflow_http_requests_total",
    "HTTP requests by route and status",
    ["method", "route", "status"],
)
REQUEST_SECONDS = Histogram(
    "leadflow_http_request_seconds", "HTTP request duration by route", ["method", "route"]
)

RETRY_AFTER_SECONDS = 5

ReadinessCheck = Callable[[], Awaitable[dict[str, bool]]]


class _BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """Answers 413 for a body over the limit of its path prefix, declared or streamed."""

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
        limit = self._limit(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._too_large(limit, scope, receive, send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if started:
                raise
            await self._too_large(limit, scope, receive, send)

    @staticmethod
    async def _too_large(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(413, f"the body is larger than {limit} bytes")
        await response(scope, receive, send)


class RequestMetrics:
    """Counts and times requests by route template (never by raw path: ids are unbounded)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            REQUESTS.labels(scope["method"], template, str(status)).inc()
            REQUEST_SECONDS.labels(scope["method"], template).observe(time.perf_counter() - started)


def operations_router(readiness: ReadinessCheck) -> APIRouter:
    """`/healthz` (process up), `/readyz` (dependencies reachable), `/metrics` (Prometheus)."""
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Every dependency is reachable",
        responses={503: {"description": "A dependency is not reachable"}},
    )
    async def readyz() -> JSONResponse:
        checks = await readiness()
        ready = all(checks.values())
        body: dict[str, Any] = {"status": "ready" if ready else "not ready", "checks": checks}
        return JSONResponse(body, status_code=200 if ready else 503)

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


def install_common(
    app: FastAPI,
    readiness: ReadinessCheck,
    *,
    body_limits: dict[str, int],
    default_body_limit: int = 64 * 1024,
) -> None:
    """Wire the pieces every service shares into `app`."""
    install_problem_handlers(app)

    async def on_broker_unavailable(_: object, exc: Exception) -> Response:
        return problem_response(503, str(exc), headers={"Retry-After": str(RETRY_AFTER_SECONDS)})

    app.add_exception_handler(BrokerUnavailable, on_broker_unavailable)
    app.include_router(operations_router(readiness))
    app.add_middleware(BodySizeLimit, limits=body_limits, default=default_body_limit)
    app.add_middleware(RequestMetrics)

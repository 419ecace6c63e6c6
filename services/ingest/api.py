"""Ingest's HTTP routes (entrypoint): parse the request, call a handler, render the answer."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from services.ingest.auth import (
    channels_for_key,
    presented_key,
    verify_standard_webhook,
    webhook_secret,
)
from services.ingest.domain import MAX_CLOCK_SKEW, channel_allowed, with_default_ids
from services.ingest.handlers import (
    ImportReport,
    ItemResult,
    accept_interactions,
    import_badge_scans,
)
from services.ingest.mautic import (
    mautic_interactions,
    mautic_sent_at,
    verify_mautic_signature,
)
from services.ingest.publisher import Publisher
from services.ingest.tradeshow_columns import BadHeader
from shared.events import CampaignKey
from shared.problems import PROBLEM_JSON, InvalidField, Problem, ProblemError, problem_responses
from shared.settings import Settings

MAX_BATCH = 1_000
WEBHOOK_PROVIDERS = ("standard", "mautic")


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_publisher(request: Request) -> Publisher:
    publisher: Publisher = request.app.state.publisher
    return publisher


async def get_channels(request: Request, settings: SettingsDep) -> list[str]:
    return channels_for_key(settings.api_keys, presented_key(request.headers))


SettingsDep = Annotated[Settings, Depends(get_settings)]
PublisherDep = Annotated[Publisher, Depends(get_publisher)]
AllowedChannels = Annotated[list[str], Depends(get_channels)]


class Accepted(BaseModel):
    id: str
    status: str = "accepted"


class BatchResult(BaseModel):
    accepted: int
    rejected: int
    results: list[ItemResult]


class BatchProblem(Problem):
    """A batch with no accepted item: the problem, plus the per-item results."""

    results: list[ItemResult] | None = Field(
        default=None, description="each event's result; absent when the body is not JSON"
    )


def _json_request_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


_INTERACTION_SCHEMA = {"$ref": "#/components/schemas/Interaction"}
_BATCH_SCHEMA = {
    "type": "object",
    "required": ["events"],
    "properties": {
        "events": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_BATCH,
            "items": _INTERACTION_SCHEMA,
        }
    },
}
_BATCH_RESPONSES: dict[int | str, dict[str, Any]] = {
    **problem_responses(401, 403, 404, 413, 415, 422, 503),
    202: {"model": BatchResult, "description": "Every event was accepted"},
    207: {"model": BatchResult, "description": "Some events were rejected; see each result"},
    400: {
        **problem_responses(400, model=BatchProblem)[400],
        "description": "No event was accepted (or the body is not JSON)",
    },
}


async def _json_body(request: Request) -> Any:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise ProblemError(415, "send the body as application/json")
    try:
        return json.loads(await request.body())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ProblemError(400, f"the body is not valid JSON: {error}") from error


def _object(body: Any, field: str = "body") -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ProblemError(
            422,
            "a JSON object is expected",
            errors=[InvalidField(field=field, message="must be an object")],
        )
    return body


def _batch_items(body: Any) -> list[Any]:
    items = _object(body).get("events")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH:
        message = f"must be a list of 1 to {MAX_BATCH} events"
        raise ProblemError(
            422, "invalid batch", errors=[InvalidField(field="events", message=message)]
        )
    return items


def _batch_answer(results: list[ItemResult]) -> JSONResponse:
    accepted = sum(1 for result in results if result.status == 202)
    if accepted == 0:
        errors = [
            InvalidField(field=f"events[{result.index}].{error.field}", message=error.message)
            for result in results
            for error in result.errors or []
        ]
        problem = BatchProblem(
            title="Bad Request",
            status=400,
            detail="no event was accepted",
            errors=errors,
            results=results,
        )
        return JSONResponse(
            problem.model_dump(mode="json", exclude_none=True),
            status_code=400,
            media_type=PROBLEM_JSON,
        )
    answer = BatchResult(accepted=accepted, rejected=len(results) - accepted, results=results)
    status = 202 if accepted == len(results) else 207
    return JSONResponse(answer.model_dump(mode="json", exclude_none=True), status_code=status)


router = APIRouter(prefix="/v1", tags=["ingest"])


@router.post(
    "/events",
    status_code=202,
    summary="Submit one interaction",
    openapi_extra=_json_request_body(_INTERACTION_SCHEMA),
    responses=problem_responses(400, 401, 403, 413, 415, 422, 503),
)
async def post_event(
    request: Request, channels: AllowedChannels, publisher: PublisherDep
) -> Accepted:
    raw = _object(await _json_body(request))
    [result] = await accept_interactions(
        [raw], publisher=publisher, source="/ingest/events", allowed_channels=channels
    )
    if result.status != 202 or result.id is None:
        raise ProblemError(result.status, "the event was not accepted", errors=result.errors)
    return Accepted(id=result.id)


@router.post(
    "/events/batch",
    status_code=202,
    summary="Submit up to 1,000 interactions; each gets its own result",
    openapi_extra=_json_request_body(_BATCH_SCHEMA),
    responses=_BATCH_RESPONSES,
    response_model=BatchResult,
)
async def post_event_batch(
    request: Request, channels: AllowedChannels, publisher: PublisherDep
) -> JSONResponse:
    items = _batch_items(await _json_body(request))
    results = await accept_interactions(
        items, publisher=publisher, source="/ingest/events/batch", allowed_channels=channels
    )
    return _batch_answer(results)


def _webhook_items(provider: str, secret: str, body: bytes, request: Request) -> list[Any]:
    if provider == "standard":
        webhook_id = verify_standard_webhook(secret, body, request.headers)
        payload = json.loads(body)
        items = (
            payload["events"] if isinstance(payload, dict) and "events" in payload else [payload]
        )
        return with_default_ids(
            items if isinstance(items, list) else [items], f"webhook:{webhook_id}"
        )
    if not verify_mautic_signature(body, request.headers.get("webhook-signature"), secret):
        raise ProblemError(401, "webhook not verified: bad or missing Webhook-Signature")
    payload = _object(json.loads(body))
    sent_at = mautic_sent_at(payload)
    if sent_at is None or abs(datetime.now(UTC) - sent_at) > MAX_CLOCK_SKEW:
        raise ProblemError(401, "webhook not verified: timestamp outside the 5-minute window")
    return mautic_interactions(payload)


@router.post(
    "/webhooks/{provider}",
    status_code=202,
    summary="Receive a signed webhook (standard = Standard Webhooks, mautic = Mautic)",
    openapi_extra=_json_request_body({"type": "object"}),
    responses=_BATCH_RESPONSES,
    response_model=BatchResult,
)
async def post_webhook(
    request: Request,
    settings: SettingsDep,
    publisher: PublisherDep,
    provider: Annotated[str, Path(max_length=64)],
) -> JSONResponse:
    if provider not in WEBHOOK_PROVIDERS:
        raise ProblemError(404, f"unknown webhook provider {provider!r}")
    secret = webhook_secret(settings.webhook_secrets, provider)
    await _json_body(request)  # content type and JSON syntax first, signature next
    body = await request.body()
    items = _webhook_items(provider, secret, body, request)
    if not items:
        raise ProblemError(422, "the webhook carried no interaction leadflow understands")
    results = await accept_interactions(
        items, publisher=publisher, source=f"/ingest/webhooks/{provider}", allowed_channels=["*"]
    )
    return _batch_answer(results)


@router.post(
    "/imports/tradeshow",
    summary="Import a CSV file of tradeshow badge scans for a campaign",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string"}}},
        }
    },
    responses=problem_responses(401, 403, 413, 415, 422, 503),
)
async def import_tradeshow(
    request: Request,
    channels: AllowedChannels,
    publisher: PublisherDep,
    campaign: Annotated[CampaignKey, Query(description="the campaign key of the show")],
) -> ImportReport:
    if not channel_allowed(channels, "tradeshow"):
        raise ProblemError(403, "this key may not send the tradeshow channel")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ("text/csv", "application/csv"):
        raise ProblemError(415, "send the file as text/csv")
    try:
        return await import_badge_scans(
            request.stream(), campaign=campaign, publisher=publisher, allowed_channels=channels
        )
    except BadHeader as error:
        raise ProblemError(
            422, "not a badge-scan file", errors=[InvalidField(field="header", message=str(error))]
        ) from error

"""Ingest's HTTP routes (entrypoint): parse the request, call a handler, render the answer."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import Annotated, Any, cast

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from services.ingest.auth import channels_for_key, presented_key
from services.ingest.body import decoded_json, json_body, json_bytes, json_object
from services.ingest.domain import channel_allowed, interaction_from_json
from services.ingest.handlers import (
    ImportReport,
    ItemResult,
    accept_interactions,
    import_badge_scans,
)
from services.ingest.publisher import Publisher
from services.ingest.tradeshow_columns import SYNONYMS, BadHeader, BadMap, parse_column_map
from services.ingest.upload import FILE_FIELD, uploaded_file
from services.ingest.webhooks import NothingRecorded, WebhookSenders, accept_webhook_items
from shared.events import CampaignKey
from shared.http import from_app_state
from shared.problems import PROBLEM_JSON, InvalidField, Problem, ProblemError, problem_responses
from shared.settings import Settings

MAX_BATCH = 1_000


async def get_channels(request: Request) -> list[str]:
    settings: Settings = request.app.state.settings
    return channels_for_key(settings.api_keys, presented_key(request.headers))


SettingsDep = Annotated[Settings, from_app_state("settings")]
WebhookSendersDep = Annotated[WebhookSenders, from_app_state("webhook_senders")]
PublisherDep = Annotated[Publisher, from_app_state("publisher")]
AllowedChannels = Annotated[list[str], Depends(get_channels)]


class Accepted(BaseModel):
    id: str
    status: str = "accepted"


def accepted_response(event_id: str, headers: Mapping[str, str] | None = None) -> Response:
    """202 with `Accepted`, encoded at once: no model to build and serialize per request."""
    body = orjson.dumps({"id": event_id, "status": "accepted"})
    return Response(body, status_code=202, media_type="application/json", headers=headers)


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


def _batch_items(body: Any) -> list[Any]:
    items = json_object(body).get("events")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH:
        message = f"must be a list of 1 to {MAX_BATCH} events"
        raise ProblemError(
            422, "invalid batch", errors=[InvalidField(field="events", message=message)]
        )
    return items


def _batch_answer(results: list[ItemResult]) -> Response:
    accepted = sum(1 for result in results if result.status == 202)
    if accepted == 0:
        errors = [
            InvalidField(
                field=f"{result.item or f'events[{result.index}]'}.{error.field}",
                message=error.message,
            )
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
        return Response(
            problem.model_dump_json(exclude_none=True), status_code=400, media_type=PROBLEM_JSON
        )
    answer = BatchResult(accepted=accepted, rejected=len(results) - accepted, results=results)
    status = 202 if accepted == len(results) else 207
    return Response(
        answer.model_dump_json(exclude_none=True),
        status_code=status,
        media_type="application/json",
    )


router = APIRouter(prefix="/v1", tags=["ingest"])


class _RequestOnlyRoute(APIRoute):
    """A route whose endpoint takes the request alone and answers a `Response`: FastAPI's
    request handler (dependencies, body, response model) is left out of each request,
    while the route is documented as declared."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return cast(Callable[[Request], Coroutine[Any, Any, Response]], self.endpoint)


async def post_event(request: Request) -> Response:
    # The hot route (issue 13): no FastAPI handler, the body validated straight from its
    # bytes; a body that is no valid interaction is decoded to say why, as elsewhere.
    channels = await get_channels(request)
    body = await json_bytes(request)
    item = interaction_from_json(body) or json_object(decoded_json(body))
    publisher: Publisher = request.app.state.publisher
    [result] = await accept_interactions(
        [item], publisher=publisher, source="/ingest/events", allowed_channels=channels
    )
    if result.status != 202 or result.id is None:
        raise ProblemError(result.status, "the event was not accepted", errors=result.errors)
    return accepted_response(result.id)


def add_event_route(app_router: APIRouter) -> None:
    """`POST /v1/events` on the app's own router: an included router's routes are matched
    through FastAPI's include machinery, which costs each request more than this route's
    own work."""
    app_router.add_api_route(
        "/v1/events",
        post_event,
        methods=["POST"],
        status_code=202,
        summary="Submit one interaction",
        tags=["ingest"],
        response_model=Accepted,
        openapi_extra=_json_request_body(_INTERACTION_SCHEMA),
        responses=problem_responses(400, 401, 403, 413, 415, 422, 503),
        route_class_override=_RequestOnlyRoute,
    )


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
) -> Response:
    items = _batch_items(await json_body(request))
    results = await accept_interactions(
        items, publisher=publisher, source="/ingest/events/batch", allowed_channels=channels
    )
    return _batch_answer(results)


_WEBHOOK_RESPONSES: dict[int | str, dict[str, Any]] = {
    **_BATCH_RESPONSES,
    200: {
        "model": NothingRecorded,
        "description": "Verified, with nothing to record (a test payload, no items); says why",
    },
}
_WEBHOOK_DESCRIPTION = """\
`standard`: [Standard Webhooks](https://www.standardwebhooks.com/), one event or
`{"events": [...]}`. `mautic`: Mautic 5 as it posts (`Webhook-Signature`, no time window;
ids from Mautic's own ids). Any other name: a source declared in `LEADFLOW_SOURCES`.
The secret is `LEADFLOW_WEBHOOK_SECRETS[provider]`; without one the provider is a 404.
Each item of the body gets its own result (`item` says where it is in the body).
"""


@router.post(
    "/webhooks/{provider}",
    status_code=202,
    summary="Receive a signed webhook: Standard Webhooks, Mautic, or a declared source",
    description=_WEBHOOK_DESCRIPTION,
    openapi_extra=_json_request_body({"type": "object"}),
    responses=_WEBHOOK_RESPONSES,
    response_model=BatchResult,
)
async def post_webhook(
    request: Request,
    senders: WebhookSendersDep,
    publisher: PublisherDep,
    provider: Annotated[str, Path(max_length=64)],
) -> Response:
    sender, secret = senders.sender(provider)
    payload = await json_body(request)  # content type and JSON syntax first, signature next
    delivery = sender.receive(secret, await request.body(), payload, request.headers)
    if not delivery.items:
        answer = NothingRecorded(detail=delivery.note or "nothing to record")
        return JSONResponse(answer.model_dump(mode="json"), status_code=200)
    results = await accept_webhook_items(
        delivery.items, publisher=publisher, source=f"/ingest/webhooks/{provider}"
    )
    return _batch_answer(results)


_TRADESHOW_FILE = {"type": "string", "format": "binary", "description": "the scanner's export"}
_TRADESHOW_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FILE_FIELD],
                    "properties": {FILE_FIELD: _TRADESHOW_FILE},
                }
            },
        },
    }
}
_TRADESHOW_DESCRIPTION = """\
The file as a scanner or ticketing tool exports it: a raw `text/csv` body, or the field
`file` of a `multipart/form-data` upload (`curl -F file=@scans.csv`, an HTML form). UTF-8
with or without a byte-order mark, UTF-16 with one, else Windows-1252; `,`, `;` or tab
between values; spreadsheet guards (`="0049 30…"`, `'+49…`) are removed.

The first line names the columns. Names are compared ignoring case, spaces and punctuation
("E-mail", "Email Address", "Company Name", "Job Title", "Checked in", "Scanned Date" with
"Scan Time", …); `map` names the others. An email column is required; without a time
column each scan is recorded at receipt, without an interaction column it is a
`badge_scan`. Times are ISO 8601 or `24.10.2024 09:14`, UTC unless they say otherwise.
Country names become ISO codes. Columns leadflow does not know become properties, and so
does a country or company size that is none.

Rows are recorded in batches of 1,000 while the file arrives; each scan's id comes from
the campaign, email, time and interaction, so uploading a file again records nothing
twice. The answer lists the mapping used, the counts and the line and reasons of each
rejected row (the first 1,000); `dry_run=true` records nothing and adds the first five
rows as they would be recorded.
"""


def _column_map(text: str | None) -> list[tuple[str, str]]:
    try:
        return parse_column_map(text or "")
    except ValueError as error:
        raise ProblemError(
            422, "invalid map", errors=[InvalidField(field="query.map", message=str(error))]
        ) from error


@router.post(
    "/imports/tradeshow",
    summary="Import a badge-scan file (a scanner's CSV export) for a campaign",
    description=_TRADESHOW_DESCRIPTION,
    openapi_extra=_TRADESHOW_BODY,
    responses={
        **problem_responses(400, 401, 403, 413, 415, 422, 503),
        200: {"description": "The file was read: the mapping used, the counts, rejected rows"},
    },
    response_model_exclude_none=True,  # a previewed record as it is on the topic
)
async def import_tradeshow(
    request: Request,
    channels: AllowedChannels,
    publisher: PublisherDep,
    campaign: Annotated[CampaignKey, Query(description="the campaign key of the show")],
    column_map: Annotated[
        str | None,
        Query(
            alias="map",
            max_length=4096,
            description="`Column:field,…`: the field of a column, overriding the names "
            "leadflow knows; field is one of " + ", ".join(SYNONYMS) + ", "
            "`properties.<key>` or `ignore`",
            examples=["Attendee Mail:email,Lead Source:properties.source"],
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        Query(description="answer the mapping, the counts and the first rows; record nothing"),
    ] = False,
) -> ImportReport:
    if not channel_allowed(channels, "tradeshow"):
        raise ProblemError(403, "this key may not send the tradeshow channel")
    pairs = _column_map(column_map)
    try:
        return await import_badge_scans(
            uploaded_file(request),
            campaign=campaign,
            publisher=publisher,
            allowed_channels=channels,
            column_map=pairs,
            dry_run=dry_run,
        )
    except BadHeader as error:
        raise ProblemError(
            422, "not a badge-scan file", errors=[InvalidField(field="header", message=str(error))]
        ) from error
    except BadMap as error:
        raise ProblemError(
            422, "invalid map", errors=[InvalidField(field="query.map", message=str(error))]
        ) from error

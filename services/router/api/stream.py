"""The hand-off stream: Server-Sent Events of lead.handoffs, from the router's own log."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent

from services.router.api.dependencies import CallerDep, Queries
from services.router.queries import LoggedHandoff
from shared.db import is_database_outage
from shared.events import NO_NUL
from shared.problems import ProblemError, problem_responses

STREAM_POLL_SECONDS = 0.2
STREAM_OUTAGE_POLL_SECONDS = 2.0
RECONNECT_MILLISECONDS = 1000
MAX_SEQ = 2**63 - 1  # hand-offs are numbered by a bigint


@dataclass(frozen=True)
class Subscription:
    """Whose hand-offs the caller follows, from where, and those already there."""

    rep_id: str | None
    team: str | None
    after: int
    backlog: list[LoggedHandoff]


async def subscribe(
    queries: Queries,
    caller: CallerDep,
    rep: Annotated[uuid.UUID | None, Query(description="only this rep's hand-offs")] = None,
    team: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
    last_event_id: Annotated[int | None, Header(ge=0, le=MAX_SEQ)] = None,
) -> Subscription:
    """A rep follows only their own hand-offs; the admin anyone's."""
    rep_id = str(rep) if rep is not None else None
    if not caller.admin:
        if rep_id is not None and rep_id != caller.rep_id:
            raise ProblemError(403, "a rep streams only their own hand-offs")
        rep_id = caller.rep_id
    after = last_event_id or 0
    # Read once before the stream starts, so that a database outage is a 503, not a 200.
    return Subscription(rep_id, team, after, await queries.handoffs_after(after, rep_id, team))


routes = APIRouter()


@routes.get(
    "/handoffs/stream",
    summary="Server-Sent Events of lead.handoffs (resume with Last-Event-ID)",
    response_class=EventSourceResponse,
    responses=problem_responses(401, 403, 422),
)
async def handoff_stream(
    request: Request,
    queries: Queries,
    subscription: Annotated[Subscription, Depends(subscribe)],
) -> AsyncIterator[ServerSentEvent]:
    yield ServerSentEvent(retry=RECONNECT_MILLISECONDS)
    rows, after = subscription.backlog, subscription.after
    while True:
        for row in rows:
            after = row.seq
            yield ServerSentEvent(id=str(row.seq), event=row.kind, data=row.envelope)
        if request.app.state.stopping or await request.is_disconnected():
            return
        if not rows:
            await asyncio.sleep(STREAM_POLL_SECONDS)
        try:
            rows = await queries.handoffs_after(after, subscription.rep_id, subscription.team)
        except Exception as error:
            if not is_database_outage(error):
                raise
            # A browser's EventSource gives up on a 503: keep its stream open instead,
            # and catch up once the database is back.
            rows = []
            await asyncio.sleep(STREAM_OUTAGE_POLL_SECONDS)

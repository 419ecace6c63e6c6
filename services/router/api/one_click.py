"""One-click accept and reject from a notification, without signing in.

Opening a link only shows the lead and a button: mail scanners and link previews open
links, and must never accept a lead. The button's POST does the action, as the rep the
link was signed for, with the same rules as the rep's own API call.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Annotated, Literal

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from services.router.api.dependencies import Definitions, Desk, Queries
from services.router.domain.errors import LeadNotFound
from services.router.domain.links import LinkRejected, OneClick, verify
from services.router.domain.notices import who
from shared.events import NO_NUL
from shared.media import preferred_media_type
from shared.problems import problem_responses

HTML = "text/html"
LINK_ANSWERS: dict[int | str, dict[str, object]] = {
    200: {"content": {"application/json": {}, HTML: {}}},
    **problem_responses(403, 404),
}


class OneClickView(BaseModel):
    lead_id: str
    action: Literal["accept", "reject"]
    expires: datetime
    lead: str = Field(description="who the lead is")
    status: str
    reasons: dict[str, str] = Field(description="what a rejection may give as its reason")


class OneClickDone(BaseModel):
    lead_id: str
    action: Literal["accept", "reject"]
    stage: str


routes = APIRouter(tags=["one-click"])


def _click(request: Request, token: str) -> OneClick:
    secret = request.app.state.link_secret
    if secret is None:
        raise LinkRejected("one-click links are not enabled here")
    try:
        return verify(secret, token, datetime.now(UTC))
    except (ValueError, TypeError, UnicodeDecodeError) as error:
        raise LinkRejected("this link is not valid") from error


def _wants_html(request: Request) -> bool:
    offered = ["application/json", HTML]
    return preferred_media_type(request.headers.get("accept"), offered) == HTML


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><html lang=en><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><link rel=stylesheet href=/static/dashboard.css>"
        f"<main class=one-click><h1>{escape(title)}</h1>{body}</main></html>"
    )


@routes.get(
    "/one-click/{token}",
    summary="What a one-click link would do, with the button that does it",
    responses=LINK_ANSWERS,
)
async def show_link(
    request: Request, queries: Queries, loaded: Definitions, token: str
) -> Response:
    click = _click(request, token)
    found = await queries.lead_brief(click.lead_id)
    if found is None:
        raise LeadNotFound(click.lead_id)
    lead, status = found
    nurture = loaded.definitions.nurture
    reasons = {key: reason.label for key, reason in nurture.reasons.items()} if nurture else {}
    view = OneClickView(
        lead_id=click.lead_id,
        action=click.action,
        expires=click.expires,
        lead=who(lead),
        status=status,
        reasons=reasons if click.action == "reject" else {},
    )
    if not _wants_html(request):
        return JSONResponse(view.model_dump(mode="json"))
    choice = ""
    if click.action == "reject":
        options = "".join(
            f"<option value={escape(key, quote=True)}>{escape(label)}</option>"
            for key, label in reasons.items()
        )
        choice = f"<label>Why <select name=reason required>{options}</select></label>"
    verb = "Accept" if click.action == "accept" else "Send back to marketing"
    return _page(
        f"{verb}: {view.lead}",
        f"<p>Grade {escape(lead.grade or '?')}, now {escape(status)}.</p>"
        f"<form method=post>{choice}<button type=submit>{verb}</button></form>",
    )


@routes.post(
    "/one-click/{token}",
    summary="Do what a one-click link says (accept, or reject with a reason)",
    responses={**LINK_ANSWERS, **problem_responses(409, 422)},
)
async def follow_link(
    request: Request,
    desk: Desk,
    token: str,
    reason: Annotated[str | None, Form(min_length=1, max_length=64, pattern=NO_NUL)] = None,
) -> Response:
    click = _click(request, token)
    details = {"reason": reason, "note": "from a one-click link"} if reason else {}
    stage = await desk.act(click.rep_id, click.lead_id, click.action, details)
    done = OneClickDone(lead_id=click.lead_id, action=click.action, stage=stage)
    if not _wants_html(request):
        return JSONResponse(done.model_dump(mode="json"))
    said = "Accepted" if click.action == "accept" else "Sent back to marketing"
    return _page(said, f"<p>The lead is now at the {escape(stage)} stage.</p>")

"""The dashboard page and its assets, served by the router itself (no CDN, no build step)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from services.router.api.dependencies import Definitions
from shared.definitions.render import document, to_html
from shared.settings import Settings

STATIC = Path(__file__).resolve().parents[1] / "static"

pages = APIRouter(include_in_schema=False)


@pages.get("/")
async def dashboard() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html")


@pages.get("/dashboard/config")
async def dashboard_config(request: Request) -> dict[str, str]:
    """What the page needs to know that is not its own: where browsers reach scoring (the
    shadow-run report). Public: it names an address, no secret."""
    settings: Settings = request.app.state.settings
    return {"scoring_url": settings.scoring_browser_url()}


@pages.get("/definitions")
async def definitions_document(loaded: Definitions) -> HTMLResponse:
    """The active lead definitions, as the document marketing and sales agreed on."""
    return HTMLResponse(to_html(document(loaded)))


assets = StaticFiles(directory=STATIC)

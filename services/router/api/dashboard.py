"""The dashboard page and its assets, served by the router itself (no CDN, no build step)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from services.router.api.dependencies import Definitions
from shared.definitions.render import document, to_html

STATIC = Path(__file__).resolve().parents[1] / "static"

pages = APIRouter(include_in_schema=False)


@pages.get("/")
async def dashboard() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html")


@pages.get("/definitions")
async def definitions_document(loaded: Definitions) -> HTMLResponse:
    """The active lead definitions, as the document marketing and sales agreed on."""
    return HTMLResponse(to_html(document(loaded)))


assets = StaticFiles(directory=STATIC)

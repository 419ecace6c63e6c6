"""The dashboard as a person opens it: signed in, every card filled, nothing running off a card."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page

from tests.stacks import ADMIN

ADMIN_KEY = ADMIN["Authorization"].removeprefix("Bearer ")
PHONE, LAPTOP = 390, 1280

# What shows that a card has been filled from its report.
FILLED = {
    "admin": (
        "#funnel-table tbody tr",
        "#trend-chart svg",
        "#queue-table tbody tr",
        "#speed-table tbody tr",
        "#reasons-chart svg",
        "#campaign-table tbody tr",
        "#fairness-reps tbody tr",
        "#outbound-table tbody tr",
        "#live li",
    ),
    "rep": ("#queue-table thead th",),
}

ERRORS_KEPT = """window.pageErrors = [];
addEventListener("error", (event) => window.pageErrors.push(event.message));
addEventListener("unhandledrejection", (event) => window.pageErrors.push(String(event.reason)));"""

# Every element of a visible card past the card's inner edges, and every card past the
# window: what a person would see cut off, or have to scroll sideways to read.
OVERFLOWING = (Path(__file__).parent / "overflowing.js").read_text()


async def sign_in(browser: Browser, url: str, token: str, width: int = LAPTOP) -> Page:
    page = await browser.new_page(viewport={"width": width, "height": 900})
    await page.add_init_script(ERRORS_KEPT)
    await page.goto(url)
    await page.fill("#token", token)
    await page.click("button[type=submit]")
    await page.wait_for_selector("#board:not([hidden])")
    return page


async def filled(page: Page, view: str) -> None:
    """Wait until every card of the view shows its report (they load concurrently); a
    script error of the page fails at once, with its message."""
    for selector in FILLED[view]:
        await page.wait_for_function(
            "(selector) => window.pageErrors.length || document.querySelector(selector)",
            arg=selector,
        )
        assert await page.evaluate("window.pageErrors") == []


async def overflowing(page: Page) -> list[Any]:
    found: list[Any] = await page.evaluate(OVERFLOWING)
    return found

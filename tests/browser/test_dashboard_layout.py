"""The dashboard after a short `leadflow demo`, at a laptop's and a phone's width: every card
holds what it shows (nothing runs past its edge), and a screenshot of each view is kept in
tests/artifacts/screenshots/ for a person to look at."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest
from playwright.async_api import Browser

from leadflow.demo.run import run_demo
from tests.browser.board import ADMIN_KEY, LAPTOP, PHONE, filled, overflowing, sign_in
from tests.browser.chromium import needs_chromium, screenshot_path
from tests.stacks import API_KEY, ServedStack

pytestmark = needs_chromium

DEMO_MINUTES = 0.2  # enough for every card to fill (the issue was seen after 0.5)


@pytest.fixture(scope="module")
async def demo(stack: ServedStack) -> dict[str, str]:
    """A demo run against the stack, with one more rep of a long name working with its reps."""
    rep = await stack.router.post(
        "/v1/reps",
        json={"name": "Rosalind Featherstonehaugh-Montgomery", "team": "emea", "capacity": 2},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )
    summary = await run_demo(
        str(stack.ingest.base_url).rstrip("/"),
        stack.router_url,
        API_KEY["X-API-Key"],
        ADMIN_KEY,
        minutes=DEMO_MINUTES,
        echo=lambda _: None,
    )
    assert summary.handoffs > 0
    return {"rep_token": rep.json()["token"]}


@pytest.mark.parametrize("width", [LAPTOP, PHONE])
@pytest.mark.parametrize("view", ["admin", "rep"])
async def test_nothing_runs_past_its_card(
    stack: ServedStack, browser: Browser, demo: dict[str, str], view: str, width: int
) -> None:
    token = ADMIN_KEY if view == "admin" else demo["rep_token"]
    page = await sign_in(browser, stack.router_url, token, width=width)
    await filled(page, view)
    await page.screenshot(path=screenshot_path(f"{view}-{width}px"), full_page=True)
    assert await overflowing(page) == []
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await page.close()


def _weeks(count: int) -> list[str]:
    return [f"{2025 + (week - 1) // 52}-W{(week - 1) % 52 + 1:02d}" for week in range(1, count + 1)]


@pytest.mark.parametrize("width", [LAPTOP, PHONE])
async def test_the_weekly_chart_reads_from_one_week_to_a_year(
    stack: ServedStack, browser: Browser, demo: dict[str, str], width: int
) -> None:
    page = await sign_in(browser, stack.router_url, ADMIN_KEY, width=width)
    await filled(page, "admin")
    for count in (1, 2, 5, 13, 26, 52):
        weeks = _weeks(count)
        series = [
            {"name": stage, "values": [(n * 7 + i * 3) % 40 for i in range(count)]}
            for n, stage in enumerate(("inquiry", "mql", "sql", "sal", "nurture"))
        ]
        # drawn into a box of its own in the card, which the dashboard's refresh leaves alone
        shown: dict[str, Any] = await page.evaluate(
            """([weeks, series]) => {
                const box = el("div", { class: "chart", id: "weeks-" + weeks.length });
                $("trend-card").append(box);
                weekly(box, weeks, series, "test");
                const svg = box.querySelector("svg").getBoundingClientRect();
                const labels = [...box.querySelectorAll("text.week")].map((t) => {
                    const r = t.getBoundingClientRect();
                    return { text: t.firstChild.textContent, left: r.left, right: r.right };
                });
                return { labels, svg: { left: svg.left, right: svg.right },
                         columns: box.querySelectorAll("rect[data-value]").length,
                         lines: box.querySelectorAll("polyline").length };
            }""",
            [weeks, series],
        )
        labels = shown["labels"]
        assert labels[-1]["text"] == weeks[-1].split("-")[1], "the newest week is labelled"
        overlapping = [(a, b) for a, b in pairwise(labels) if a["right"] > b["left"]]
        assert overlapping == [], f"{count} weeks: labels overlap"
        svg = shown["svg"]
        outside = [t for t in labels if t["left"] < svg["left"] or t["right"] > svg["right"]]
        assert outside == [], f"{count} weeks: labels outside the chart"
        drawn = shown["columns"] == count * len(series) or shown["lines"] == len(series)
        assert drawn, f"{count} weeks: {shown['columns']} columns, {shown['lines']} lines"
    assert await overflowing(page) == []
    await page.screenshot(path=screenshot_path(f"weekly-charts-{width}px"), full_page=True)
    await page.close()

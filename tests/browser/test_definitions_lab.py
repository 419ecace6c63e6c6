"""The definitions lab's two cards in Debian's chromium, each against its API: "Candidate vs
active" shows scoring's shadow-run report, the calibration card the router's report."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page

from tests.browser.board import ADMIN_KEY, sign_in
from tests.browser.chromium import needs_chromium, screenshot_path
from tests.integration.test_router import demo_request, new_rep
from tests.stacks import ADMIN, ServedStack
from tests.unit.test_shadow import CANDIDATE_TEXT

pytestmark = needs_chromium

DEMO_REQUESTS = ("one@munich-firm.de", "two@munich-firm.de", "three@berlin-firm.de")
# Two forms and a download: 40 points, sales-ready for the candidate only.
ENGAGED = ("four@hamburg-firm.de", "five@cologne-firm.de")


async def engage(ingest: httpx.AsyncClient, email: str) -> None:
    contact = {"email": email, "company": "Acme", "country": "DE"}
    for kind, properties in (
        ("form_submit", {}),
        ("form_submit", {}),
        ("content_download", {"asset": "pricing-guide.pdf"}),
    ):
        event = {"channel": "web", "type": kind, "contact": contact, "properties": properties}
        assert (await ingest.post("/v1/events", json=event)).status_code == 202


async def until(read: Any, done: Any) -> Any:
    for _ in range(150):
        value = await read()
        if done(value):
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"never reached: {value}")


@pytest.fixture(scope="module")
async def reports(stack: ServedStack) -> dict[str, Any]:
    """A shadow run of a candidate that hands off at 40 points; three demo requests handed
    off by both, one accepted and one returned; two leads only the candidate hands off."""
    started = await stack.scoring.post(
        "/v1/definitions/shadow", json={"document": CANDIDATE_TEXT, "label": "hand off at 40"}
    )
    assert started.status_code == 201, started.text
    ada, ada_token = await new_rep(stack.router, "Ada Lab", capacity=3)
    bea, bea_token = await new_rep(stack.router, "Bea Lab", capacity=3)
    for email in DEMO_REQUESTS:
        await demo_request(stack.ingest, email)
    for email in ENGAGED:
        await engage(stack.ingest, email)

    async def queues() -> dict[str, list[dict[str, Any]]]:
        return {
            rep: (await stack.router.get(f"/v1/reps/{rep}/queue", headers=token)).json()
            for rep, token in ((ada, ada_token), (bea, bea_token))
        }

    queued = await until(queues, lambda q: sum(len(leads) for leads in q.values()) == 3)
    await stack.router.post(f"/v1/leads/{queued[ada][0]['id']}/accept", headers=ada_token)
    await stack.router.post(
        f"/v1/leads/{queued[bea][0]['id']}/reject",
        json={"reason": "bad_timing"},
        headers=bea_token,
    )

    async def shadow() -> dict[str, Any]:
        answer: dict[str, Any] = (await stack.scoring.get("/v1/definitions/shadow/report")).json()
        return answer

    shadowed = await until(
        shadow,
        lambda r: (
            r["leads"] == len(DEMO_REQUESTS) + len(ENGAGED)
            and r["verdicts"]["accepted"] + r["verdicts"]["returned"] == 2
        ),
    )
    calibration = (await stack.router.get("/v1/reports/calibration", headers=ADMIN)).json()
    return {"shadow": shadowed, "calibration": calibration}


async def shown(page: Page, selector: str, attribute: str = "data-value") -> Any:
    value = await page.get_attribute(selector, attribute)
    return None if value is None else json.loads(value)


async def test_candidate_vs_active_shows_the_shadow_report(
    stack: ServedStack, browser: Browser, reports: dict[str, Any]
) -> None:
    report = reports["shadow"]
    assert report["handed_off"]["candidate_only"]["count"] == len(ENGAGED)
    assert report["handed_off"]["both"] == len(DEMO_REQUESTS)
    page = await sign_in(browser, stack.router_url, ADMIN_KEY)
    await page.wait_for_selector("#shadow-precision")

    counts = {
        key: await shown(page, f"#shadow-{key.replace('_', '-')} td:nth-child(2)")
        for key in ("candidate_only", "active_only", "both", "neither")
    }
    handed_off = report["handed_off"]
    assert counts == {
        "candidate_only": handed_off["candidate_only"]["count"],
        "active_only": handed_off["active_only"]["count"],
        "both": handed_off["both"],
        "neither": handed_off["neither"],
    }
    grades = await page.eval_on_selector_all(
        "#shadow-grade-table tbody tr",
        "rows => rows.map(r => [...r.cells].map(c => c.dataset.value ?? c.textContent))",
    )
    assert grades == [
        [shift["active_grade"], shift["candidate_grade"], str(shift["leads"])]
        for shift in report["grade_shift"]
    ]
    weekly = await page.eval_on_selector_all(
        "#shadow-weekly-table tbody tr",
        "rows => rows.map(r => [...r.cells].slice(1).map(c => c.dataset.value ?? c.textContent))",
    )
    assert weekly == [
        [week["team"], str(week["active"]), str(week["candidate"]), "6"]  # Ada's 3 + Bea's 3
        for week in report["weekly_by_team"]
    ]
    for side in ("active", "candidate"):
        precision = report["verdicts"][side]["precision"]
        assert await shown(page, "#shadow-precision", f"data-{side}") == precision
    await page.locator("#shadow-card").screenshot(path=screenshot_path("shadow-run"))


async def test_the_calibration_card_shows_the_calibration_report(
    stack: ServedStack, browser: Browser, reports: dict[str, Any]
) -> None:
    report = reports["calibration"]
    assert (report["overall"]["accepted"], report["overall"]["returned"]) == (1, 1)
    page = await sign_in(browser, stack.router_url, ADMIN_KEY)
    await page.wait_for_selector("#calibration-rules tbody tr")

    assert "accepted 1 of the 2" in (await page.inner_text("#calibration-overall"))
    rules = await page.eval_on_selector_all(
        "#calibration-rules tbody tr", "rows => rows.map(r => r.dataset.key)"
    )
    assert sorted(rules) == sorted(row["key"] for row in report["by_rule"])
    demo = page.locator("#calibration-rules tr[data-key=demo-request] td").nth(5)
    by_rule = {row["key"]: row for row in report["by_rule"]}
    assert json.loads(await demo.get_attribute("data-value") or "null") == pytest.approx(
        by_rule["demo-request"]["acceptance"]["rate"]
    )
    suggestions = await page.locator("#calibration-suggestions li[data-kind]").count()
    assert suggestions == len(report["suggestions"])
    csv = await page.get_attribute("#calibration-csv", "href")
    assert csv is not None
    assert csv.startswith("/v1/reports/calibration?")
    await page.locator("#calibration-card").screenshot(path=screenshot_path("calibration"))

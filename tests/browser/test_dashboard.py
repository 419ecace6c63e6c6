"""The dashboard in Debian's chromium: the funnel matches the API, hand-offs appear live,
a rep sees only their own queue, queued leads in a row share a line of the live feed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from playwright.async_api import Browser

from tests.browser.board import ADMIN_KEY, sign_in
from tests.browser.chromium import needs_chromium, screenshot_path
from tests.integration.test_router import demo_request, new_rep
from tests.stacks import ADMIN, ServedStack

pytestmark = needs_chromium


@pytest.fixture(scope="module")
async def worked_leads(stack: ServedStack) -> dict[str, str]:
    """Two reps in DACH, three hand-offs: one accepted, one returned to nurture."""
    ada, ada_token = await new_rep(stack.router, "Ada Demo", capacity=3)
    bea, bea_token = await new_rep(stack.router, "Bea Demo", capacity=3)
    for email in ("one@munich-firm.de", "two@munich-firm.de", "three@berlin-firm.de"):
        await demo_request(stack.ingest, email)
    tokens = {ada: ada_token, bea: bea_token}
    for _ in range(100):
        queues = {
            rep: (await stack.router.get(f"/v1/reps/{rep}/queue", headers=token)).json()
            for rep, token in tokens.items()
        }
        if sum(len(q) for q in queues.values()) == 3:
            break
        await asyncio.sleep(0.1)
    first = queues[ada][0]["id"]
    await stack.router.post(f"/v1/leads/{first}/accept", headers=ada_token)
    second = queues[bea][0]["id"]
    await stack.router.post(
        f"/v1/leads/{second}/reject", json={"reason": "bad_timing"}, headers=bea_token
    )
    return {"ada": ada, "ada_token": ada_token["Authorization"].removeprefix("Bearer ")}


async def test_the_funnel_on_the_page_is_the_funnel_of_the_api(
    stack: ServedStack, browser: Browser, worked_leads: dict[str, str]
) -> None:
    page = await sign_in(browser, stack.router_url, ADMIN_KEY)
    # the funnel, speed and nurture reports load concurrently: wait for each one read below
    for loaded in ("#funnel-table tbody tr", "#speed-chart svg", "#reasons-chart svg rect"):
        await page.wait_for_selector(loaded)
    api = (await stack.router.get("/v1/reports/funnel", headers=ADMIN)).json()
    expected = {s["stage"]: s["leads"] for s in api["slices"][0]["stages"]}
    shown = {
        row[1]: int(row[2])
        for row in await page.eval_on_selector_all(
            "#funnel-table tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
        )
    }
    assert shown == expected
    assert shown["sql"] == 3
    bars = await page.eval_on_selector_all(
        "#funnel-chart rect", "rects => rects.map(r => Number(r.dataset.value))"
    )
    assert 3 in bars
    assert await page.is_visible("#speed-chart svg")
    assert "bad_timing" in (await page.text_content("#reasons-chart") or "")
    assert "By rep: Bea Demo 1" in await page.inner_text("#returned-by")
    definitions = await page.context.request.get(f"{stack.router_url}/definitions")
    assert "Sales-ready lead (hand-off)" in await definitions.text()


async def test_a_hand_off_appears_live(
    stack: ServedStack, browser: Browser, worked_leads: dict[str, str]
) -> None:
    page = await sign_in(browser, stack.router_url, ADMIN_KEY)
    await page.wait_for_selector("#live li")  # the stream replays what happened so far
    before = await page.locator("#live li[data-kind=assigned]").count()
    await demo_request(stack.ingest, "live@hamburg-firm.de")
    await page.wait_for_function(
        f"document.querySelectorAll('#live li[data-kind=assigned]').length > {before}"
    )
    # the newest comes first: the hand-off just made, shown without reloading the page
    newest = await page.get_attribute("#live li[data-kind=assigned]", "data-lead")
    roster = (await stack.router.get("/v1/reps", headers=ADMIN)).json()
    queued = [
        lead
        for rep in roster
        for lead in (await stack.router.get(f"/v1/reps/{rep['id']}/queue", headers=ADMIN)).json()
    ]
    assert next(lead["email"] for lead in queued if lead["id"] == newest) == "live@hamburg-firm.de"
    await page.screenshot(path=screenshot_path("live-hand-off"))


async def test_a_rep_sees_only_their_own_queue(
    stack: ServedStack, browser: Browser, worked_leads: dict[str, str]
) -> None:
    page = await sign_in(browser, stack.router_url, worked_leads["ada_token"])
    await page.wait_for_selector("#queue-table tbody tr")
    own = (
        await stack.router.get(
            f"/v1/reps/{worked_leads['ada']}/queue",
            headers={"Authorization": f"Bearer {worked_leads['ada_token']}"},
        )
    ).json()
    assert await page.locator("#queue-table tbody tr").count() == len(own)
    assert await page.is_hidden("#funnel-card")
    assert await page.is_hidden("#slice")  # what slices the admin's reports means nothing here
    await page.wait_for_selector("#live li[data-kind=assigned]")
    assert "assigned you" in await page.inner_text("#live li[data-kind=assigned]")
    assert await page.inner_text("#who") == "signed in as a rep"
    await page.screenshot(path=screenshot_path("rep-own-queue"), full_page=True)


async def test_a_notice_link_shows_its_lead_in_the_reps_queue(
    stack: ServedStack, browser: Browser, worked_leads: dict[str, str]
) -> None:
    [lead, *_] = (
        await stack.router.get(
            f"/v1/reps/{worked_leads['ada']}/queue",
            headers={"Authorization": f"Bearer {worked_leads['ada_token']}"},
        )
    ).json()
    page = await sign_in(
        browser, f"{stack.router_url}/#lead-{lead['id']}", worked_leads["ada_token"]
    )
    await page.wait_for_selector(f"#lead-{lead['id']}.linked")


async def test_a_paused_subscription_shows_on_the_notifications_card(
    stack: ServedStack, browser: Browser, worked_leads: dict[str, str]
) -> None:
    created = await stack.router.post(
        "/v1/subscriptions",
        json={
            "url": "http://127.0.0.1:9/hooks",
            "event_types": ["leadflow.handoff.assigned"],
            "description": "Test CRM",
        },
        headers=ADMIN,
    )
    paused = await stack.router.post(
        f"/v1/subscriptions/{created.json()['id']}/pause", headers=ADMIN
    )
    assert paused.json()["status"] == "paused"
    page = await sign_in(browser, stack.router_url, ADMIN_KEY)
    await page.wait_for_selector("#outbound-table tbody tr")
    assert "Test CRM (paused by an admin)" in await page.inner_text("#paused")
    summary = (await stack.router.get("/v1/notifications/summary", headers=ADMIN)).json()
    for channel in ("email", "chat", "webhook"):
        row = page.locator(f"#outbound-table tr[data-channel={channel}] td")
        shown = [await row.nth(i).get_attribute("data-value") for i in range(1, 5)]
        counts = summary[channel]
        assert shown == [str(counts[k]) for k in ("delivered", "pending", "failed", "skipped")]
    await page.screenshot(path=screenshot_path("admin-notifications"), full_page=True)


async def test_leads_queued_in_a_row_share_one_line_of_the_feed(
    stack: ServedStack, browser: Browser, worked_leads: dict[str, str]
) -> None:
    """No rep works France: three demo requests from there wait in the queue, one line."""
    page = await sign_in(browser, stack.router_url, ADMIN_KEY)
    for email in ("un@paris-firm.fr", "deux@lyon-firm.fr", "trois@lille-firm.fr"):
        await demo_request(stack.ingest, email, country="FR")
    await page.wait_for_selector("#live li[data-kind=queued][data-count='3']")
    lines = await page.locator("#live li[data-kind=queued]").all_inner_texts()
    assert len(lines) == 1
    assert "3 leads waiting · emea 3" in lines[0]
    await page.screenshot(path=screenshot_path("live-queued"))


REP_FIGURES = (
    "received",
    "as_account_owner",
    "by_strategy",
    "fair_share",
    "ratio_to_fair_share",
    "acceptance_rate",
    "sla_breaches",
    "reassigned_away",
    "median_minutes_to_accept",
)
TEAM_FIGURES = ("rep_count", "received", "as_account_owner", "by_strategy", "gini")
SHOWN = """() => {
    const figures = (row) => [...row.cells].filter((c) => c.dataset.value !== undefined)
        .map((c) => [JSON.parse(c.dataset.value), c.textContent]);
    const by = (selector, key) => Object.fromEntries([...document.querySelectorAll(selector)]
        .map((row) => [row.dataset[key], figures(row)]));
    return { csv: document.querySelector("#fairness-csv").getAttribute("href"),
             reps: by("#fairness-reps tbody tr", "rep"),
             teams: by("#fairness-teams tbody tr", "team") };
}"""


async def test_the_fairness_card_shows_the_routing_report_of_its_period(
    stack: ServedStack, browser: Browser, worked_leads: dict[str, str]
) -> None:
    """One rep got munich-firm.de by round robin, then its second lead as account owner."""
    page = await sign_in(browser, stack.router_url, ADMIN_KEY)
    await page.wait_for_selector("#fairness-reps tbody tr")
    shown = await page.evaluate(SHOWN)  # the figures and their period, read at one moment
    report = (await stack.router.get(shown["csv"], headers=ADMIN)).json()
    assert {rep["rep_id"]: [rep[name] for name in REP_FIGURES] for rep in report["reps"]} == {
        rep: [value for value, _ in figures] for rep, figures in shown["reps"].items()
    }
    assert {team["team"]: [team[name] for name in TEAM_FIGURES] for team in report["teams"]} == {
        team: [value for value, _ in figures] for team, figures in shown["teams"].items()
    }
    owner = next(rep for rep in report["reps"] if rep["as_account_owner"])
    assert sorted(rep["as_account_owner"] for rep in report["reps"]) == [0, 1]
    counts = [REP_FIGURES.index(name) for name in ("by_strategy", "as_account_owner")]
    texts = [shown["reps"][owner["rep_id"]][i][1] for i in counts]
    assert texts == [str(owner["by_strategy"]), "1"]
    async with page.expect_download() as downloading:
        await page.click("#fairness-csv")
    downloaded = Path(await (await downloading.value).path())
    csv = await asyncio.to_thread(downloaded.read_bytes)
    expected = await stack.router.get(shown["csv"], headers=ADMIN | {"Accept": "text/csv"})
    assert csv == expected.content
    await page.locator("#fairness-card").screenshot(path=screenshot_path("fairness-card"))

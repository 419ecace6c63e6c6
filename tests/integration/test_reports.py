"""Funnel figures checked against a small scenario computed by hand."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import create_async_engine

from services.router.bootstrap import create_app as create_router
from services.router.queries.reporting import ReportQueries
from services.router.reports import funnel_report, nurture_report, speed_to_lead_report
from services.router.repository import SqlHistory
from services.router.tables import handoff_log, leads, sales_actions
from shared.definitions import load_definitions
from shared.settings import Settings
from tests.serving import served
from tests.stacks import ADMIN

pytestmark = pytest.mark.integration

DEFINITIONS = load_definitions(
    Path(__file__).resolve().parents[2] / "lead-definitions.yaml"
).definitions
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
LEADS = [f"00000000-0000-0000-0000-00000000000{n}" for n in range(1, 5)]


def change(
    n: int, lead: int, to: str, hours: float, grade: str, campaigns: list[str]
) -> dict[str, object]:
    return {
        "event_id": f"report-{n}",
        "lead_id": LEADS[lead],
        "from_stage": None,
        "to_stage": to,
        "occurred_at": T0 + timedelta(hours=hours),
        "grade": grade,
        "reason": "criteria",
        "campaigns": campaigns,
        "source_channel": "web" if lead % 2 == 0 else "email",
    }


# Four leads: all reach inquiry; three reach mql (after 2, 4 and 6 hours); two reach sql
# (after 1 and 3 more hours); one is accepted (sal) 0.5 hours later.
SCENARIO = [
    change(1, 0, "inquiry", 0, "C", ["q4-webinar"]),
    change(2, 0, "mql", 2, "B", ["q4-webinar"]),
    change(3, 0, "sql", 3, "A", ["q4-webinar"]),
    change(4, 0, "sal", 3.5, "A", ["q4-webinar"]),
    change(5, 1, "inquiry", 0, "C", ["newsletter"]),
    change(6, 1, "mql", 4, "B", ["newsletter"]),
    change(7, 1, "sql", 7, "B", ["newsletter"]),
    change(8, 2, "inquiry", 0, "C", []),
    change(9, 2, "mql", 6, "C", []),
    change(10, 3, "inquiry", 0, "C", []),
]


@pytest.fixture(scope="module")
async def scenario(database_url: str) -> str:
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as connection:
            history = SqlHistory(connection)
            await history.record_stage_changes(SCENARIO)
            await history.record_stage_changes(SCENARIO)  # a redelivery counts once
    finally:
        await engine.dispose()
    return database_url


async def test_funnel_counts_conversions_and_median_time_in_stage(scenario: str) -> None:
    engine = create_async_engine(scenario)
    try:
        report = await funnel_report(
            ReportQueries(engine),
            DEFINITIONS,
            T0 - timedelta(days=1),
            T0 + timedelta(days=1),
            "all",
        )
        by_campaign = await funnel_report(
            ReportQueries(engine),
            DEFINITIONS,
            T0 - timedelta(days=1),
            T0 + timedelta(days=1),
            "campaign",
        )
        empty = await funnel_report(
            ReportQueries(engine),
            DEFINITIONS,
            T0 + timedelta(days=2),
            T0 + timedelta(days=3),
            "all",
        )
    finally:
        await engine.dispose()
    [everyone] = report.slices
    stages = {s.stage: s for s in everyone.stages}
    assert [stages[k].leads for k in ("inquiry", "mql", "sql", "sal", "won")] == [4, 3, 2, 1, 0]
    assert stages["inquiry"].conversion_to_next == 0.75  # 3 of 4
    assert stages["mql"].conversion_to_next == round(2 / 3, 4)
    assert stages["sql"].conversion_to_next == 0.5
    assert stages["inquiry"].median_hours_in_stage == 4  # 2, 4, 6 hours
    assert stages["mql"].median_hours_in_stage == 2  # 1 and 3 hours
    assert stages["sql"].median_hours_in_stage == 0.5
    assert stages["nurture"].conversion_to_next is None  # an exit, not a step
    campaigns = {
        piece.slice: {s.stage: s.leads for s in piece.stages} for piece in by_campaign.slices
    }
    assert campaigns["q4-webinar"]["sal"] == 1
    assert campaigns["newsletter"]["sql"] == 1
    assert campaigns["(none)"]["inquiry"] == 2
    assert empty.slices == []


async def test_funnel_by_week_gives_the_trend(scenario: str) -> None:
    engine = create_async_engine(scenario)
    try:
        weekly = await funnel_report(
            ReportQueries(engine),
            DEFINITIONS,
            T0 - timedelta(days=1),
            T0 + timedelta(days=1),
            "week",
        )
    finally:
        await engine.dispose()
    assert [piece.slice for piece in weekly.slices] == ["2026-W45"]


async def test_funnel_by_source_channel_and_funnel_entry(scenario: str) -> None:
    engine = create_async_engine(scenario)
    window = (T0 - timedelta(days=1), T0 + timedelta(days=1))
    try:
        channels = await funnel_report(ReportQueries(engine), DEFINITIONS, *window, "channel")
        entries = await funnel_report(ReportQueries(engine), DEFINITIONS, *window, "entry")
    finally:
        await engine.dispose()
    by_channel = {p.slice: {s.stage: s.leads for s in p.stages} for p in channels.slices}
    assert (by_channel["web"]["inquiry"], by_channel["email"]["inquiry"]) == (2, 2)
    assert (by_channel["web"]["sql"], by_channel["email"]["sql"]) == (1, 1)
    by_entry = {p.slice: {s.stage: s.leads for s in p.stages} for p in entries.slices}
    assert by_entry["middle"]["sal"] == 1  # q4-webinar enters mid-funnel
    assert by_entry["top"]["sql"] == 1  # newsletter is top of the funnel
    assert by_entry["(none)"]["inquiry"] == 2


async def test_the_funnel_route_answers_json_and_csv(settings: Settings, scenario: str) -> None:
    configured = settings.model_copy(update={"database_url": scenario})
    async with served(create_router(configured)) as url, httpx.AsyncClient(base_url=url) as http:
        params = {"from": "2026-11-01T00:00:00Z", "to": "2026-11-03T00:00:00Z", "by": "grade"}
        answer = await http.get("/v1/reports/funnel", params=params, headers=ADMIN)
        assert answer.status_code == 200
        grades = {piece["slice"] for piece in answer.json()["slices"]}
        assert grades == {"A", "B", "C"}
        as_csv = await http.get(
            "/v1/reports/funnel", params=params, headers={**ADMIN, "Accept": "text/csv"}
        )
        assert as_csv.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(as_csv.text)))
        inquiries = next(r for r in rows if (r["slice"], r["stage"]) == ("C", "inquiry"))
        assert inquiries["leads"] == "4"  # every lead entered inquiry with grade C
        assert (await http.get("/v1/reports/funnel")).status_code == 401
        bad = await http.get("/v1/reports/funnel", params={"by": "colour"}, headers=ADMIN)
        assert bad.status_code == 422
        naive = await http.get(
            "/v1/reports/funnel", params={"from": "2026-11-01T00:00:00"}, headers=ADMIN
        )
        assert naive.status_code == 422
        for report in ("speed-to-lead", "nurture"):
            as_json = await http.get(f"/v1/reports/{report}", params=params, headers=ADMIN)
            assert as_json.status_code == 200
            as_csv = await http.get(
                f"/v1/reports/{report}", params=params, headers={**ADMIN, "Accept": "text/csv"}
            )
            assert as_csv.text.startswith("section,")


R1, R2 = "00000000-0000-0000-0000-0000000000a1", "00000000-0000-0000-0000-0000000000a2"


@pytest.fixture(scope="module")
async def follow_up(scenario: str) -> str:
    """Lead 1 (q4-webinar, dach) accepted by R1 after 4 minutes and won for 30,000; lead 2
    (newsletter, emea) accepted by R2 after 90 minutes, returned for no budget, and handed
    off again later."""
    engine = create_async_engine(scenario)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                insert(leads),
                [
                    {
                        "id": LEADS[0],
                        "status": "closed",
                        "rep_id": R1,
                        "team": "dach",
                        "profile": {"campaigns": ["q4-webinar"]},
                    },
                    {
                        "id": LEADS[1],
                        "status": "returned",
                        "rep_id": R2,
                        "team": "emea",
                        "profile": {"campaigns": ["newsletter"]},
                    },
                ],
            )
            await SqlHistory(connection).record_stage_changes(
                [change(11, 1, "sql", 20, "B", ["newsletter"])]
            )
            await connection.execute(
                insert(handoff_log),
                [
                    {
                        "event_id": "h1",
                        "lead_id": LEADS[0],
                        "rep_id": R1,
                        "team": "dach",
                        "kind": "accepted",
                        "envelope": {},
                        "created_at": T0 + timedelta(hours=3, minutes=4),
                    },
                    {
                        "event_id": "h2",
                        "lead_id": LEADS[1],
                        "rep_id": R2,
                        "team": "emea",
                        "kind": "accepted",
                        "envelope": {},
                        "created_at": T0 + timedelta(hours=8, minutes=30),
                    },
                ],
            )
            await connection.execute(
                insert(sales_actions),
                [
                    {
                        "event_id": "s1",
                        "lead_id": LEADS[0],
                        "rep_id": R1,
                        "action": "won",
                        "details": {"amount": 30000},
                        "created_at": T0 + timedelta(hours=9),
                    },
                    {
                        "event_id": "s2",
                        "lead_id": LEADS[1],
                        "rep_id": R2,
                        "action": "reject",
                        "details": {"reason": "no_budget"},
                        "created_at": T0 + timedelta(hours=10),
                    },
                ],
            )
    finally:
        await engine.dispose()
    return scenario


async def test_speed_to_lead_and_the_feedback_loop(follow_up: str) -> None:
    engine = create_async_engine(follow_up)
    window = (T0 - timedelta(days=1), T0 + timedelta(days=1))
    try:
        speed = await speed_to_lead_report(ReportQueries(engine), DEFINITIONS, *window)
        loop = await nurture_report(ReportQueries(engine), DEFINITIONS, *window)
    finally:
        await engine.dispose()
    teams = {row.group: row for row in speed.by_team}
    assert (teams["dach"].p50_minutes, teams["dach"].accepted_within_5_minutes) == (4.0, 1.0)
    assert (teams["emea"].p50_minutes, teams["emea"].accepted_within_1_hour) == (90.0, 0.0)
    assert {row.group for row in speed.by_rep} == {R1, R2}
    assert [b.leads for b in speed.histogram] == [1, 0, 0, 0, 1, 0, 0]  # 4 min, 90 min
    assert [(c.key, c.leads) for c in loop.returned_by_reason] == [("no_budget", 1)]
    assert [(c.key, c.leads) for c in loop.returned_by_rep] == [(R2, 1)]
    assert [(c.key, c.leads) for c in loop.returned_by_campaign] == [("newsletter", 1)]
    assert loop.handed_off_again == 1
    webinar = next(c for c in loop.campaigns if c.campaign == "q4-webinar")
    assert (webinar.sales_ready, webinar.won, webinar.won_amount, webinar.cost) == (
        1,
        1,
        30000,
        12000,
    )
    assert (webinar.cost_per_sales_ready, webinar.roi) == (12000, 1.5)
    newsletter = next(c for c in loop.campaigns if c.campaign == "newsletter")
    assert (newsletter.sales_ready, newsletter.cost_per_sales_ready) == (1, 2000)

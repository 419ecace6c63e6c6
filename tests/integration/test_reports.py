"""Funnel figures checked against a small scenario computed by hand."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from services.router.bootstrap import create_app as create_router
from services.router.reports import funnel_report
from services.router.repository import record_stage_changes
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
            await record_stage_changes(connection, SCENARIO)
            await record_stage_changes(connection, SCENARIO)  # a redelivery counts once
    finally:
        await engine.dispose()
    return database_url


async def test_funnel_counts_conversions_and_median_time_in_stage(scenario: str) -> None:
    engine = create_async_engine(scenario)
    try:
        report = await funnel_report(
            engine, DEFINITIONS, T0 - timedelta(days=1), T0 + timedelta(days=1), "all"
        )
        by_campaign = await funnel_report(
            engine, DEFINITIONS, T0 - timedelta(days=1), T0 + timedelta(days=1), "campaign"
        )
        empty = await funnel_report(
            engine, DEFINITIONS, T0 + timedelta(days=2), T0 + timedelta(days=3), "all"
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

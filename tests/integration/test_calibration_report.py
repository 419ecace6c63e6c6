"""The calibration report against a scenario computed by hand.

The scenario goes through the real router (its service layer on this module's PostgreSQL,
as in test_fairness_report) with the default definitions: scoring hands off twelve leads in
the period (and one two days before it, left out), all to Ada (dach); she accepts, returns
(with a nurture reason), converts and wins some of them. Times are hours after T0; the
period is [T0, T0 + 96 h).

lead score grade top rules               campaigns              channel verdict
L1   140   A     demo-request, executive q4-webinar             web     accepted, converted, won
L2   150   A     demo-request            q4-webinar             web     accepted, converted
L3   160   A     demo-request            q4-webinar             web     accepted
L4   170   A     demo-request            q4-webinar             email   accepted
L5   180   A     demo-request            q4-webinar             email   accepted
L6   190   A     demo-request            q4-webinar, newsletter email   accepted
L7   110   B     email-click             newsletter             email   accepted
L8   102   B     email-click             newsletter             email   returned: no_budget
L9   104   B     email-click             newsletter             email   returned: no_budget
L10  106   B     email-click             newsletter             email   returned: bad_timing
L11  112   B     email-click             newsletter             web     returned: not_decision_maker
L12  120   A     demo-request            (none)                 web     pending

Overall: 12 handed off, 7 accepted, 4 returned, 1 pending: acceptance 7/11 = 0.6364,
Wilson (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n), z = 1.96: [0.3538, 0.8483];
opportunities 2/12 = 0.1667 [0.047, 0.448]; won 1/12 = 0.0833 [0.0149, 0.3539].
By rule: demo-request L1-L6, L12: 6/6 accepted = 1.0 [0.6097, 1.0], 1 pending, opportunities
2/7, won 1/7; email-click L7-L11: 1/5 = 0.2 [0.0362, 0.6245], reasons no_budget 2,
bad_timing 1, not_decision_maker 1; executive L1: 1/1.
By campaign: q4-webinar L1-L6: 6/6; newsletter L6-L11: 2/6 = 0.3333 [0.0968, 0.7];
(none) L12: no verdict. By channel: web L1-L3, L11, L12: 3/4 = 0.75; email L4-L10: 4/7 =
0.5714. By grade: A 6/6 (1 pending), B 1/5.
Suggestions, target 0.6 (default): 0.6364 is met; email-click's high 0.6245 < 0.6364 and 5
verdicts: halve its points, 3 -> 1.5. Target 0.8: besides, from a score of 102: 7/11, 104:
7/10, 106: 7/9 = 0.778, 110: 7/8 = 0.875 [0.5291, 0.9776] >= 0.8: hand off from 110.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.router.actions import SalesDesk
from services.router.bootstrap import create_app as create_router
from services.router.domain import Action
from services.router.handlers import RouterService
from shared.definitions import load_definitions
from shared.definitions.loader import parse_definitions
from shared.events import LeadProfile, ScoreReason
from shared.settings import Settings
from shared.topics import LIFECYCLE
from tests.conftest import TEST_ADMIN_KEY
from tests.fakes.router import hand_off_event
from tests.integration.test_router import router_service
from tests.records import batch_of_one
from tests.stacks import ADMIN
from tests.unit.test_router_service import Clock

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 2, tzinfo=UTC)
PERIOD = {"from": "2026-11-02T00:00:00Z", "to": "2026-11-06T00:00:00Z"}
REPORT = "/v1/reports/calibration"
VERSION = load_definitions(Path("lead-definitions.yaml")).version


@dataclass
class Router:
    """The real router's service layer on this module's database, on a clock the test moves."""

    service: RouterService
    clock: Clock
    rep_id: str = ""
    offset: int = 0

    @property
    def desk(self) -> SalesDesk:
        return SalesDesk(self.service.units, self.service.assigner)

    async def hand_off(
        self,
        hours: float,
        score: float,
        grade: str,
        rules: tuple[str, ...],
        campaigns: tuple[str, ...],
        channel: str,
    ) -> str:
        """Scoring hands a lead of Germany over, as the consumer passes it on."""
        self.clock.now = T0 + timedelta(hours=hours)
        lead_id = str(uuid.uuid4())
        profile = LeadProfile(
            email=f"{lead_id[:8]}@example.de",
            company="Example",
            country="DE",
            campaigns=campaigns,
            source_channel=channel,
        )
        event = hand_off_event(lead_id, profile, self.clock())
        reasons = tuple(ScoreReason(rule=rule, label=rule, points=40) for rule in rules)
        data = event.data.model_copy(
            update={"score": score, "grade": grade, "top_reasons": reasons}
        )
        value = event.model_copy(update={"data": data}).model_dump_json().encode()
        await self.service.handle_lifecycle(batch_of_one(LIFECYCLE.name, value, self.offset))
        self.offset += 1
        return lead_id

    async def act(self, lead_id: str, *actions: Action, **details: Any) -> None:
        for action in actions:
            await self.desk.act(self.rep_id, lead_id, action, details)


@pytest.fixture(scope="module")
async def router_api(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(DATABASE_URL=database_url)
    async with router_service(settings, clock := Clock(T0)) as service:
        router = Router(service, clock)
        router.rep_id, _ = await router.desk.create_rep(
            {"name": "Ada", "team": "dach", "capacity": 50}
        )
        q4, news = ("q4-webinar",), ("newsletter",)
        early = await router.hand_off(-48, 150, "A", ("demo-request",), q4, "web")
        await router.act(early, "reject", reason="bad_data")  # before the period
        demo = ("demo-request",)
        leads = [
            await router.hand_off(1, 140, "A", ("demo-request", "executive"), q4, "web"),
            await router.hand_off(2, 150, "A", demo, q4, "web"),
            await router.hand_off(3, 160, "A", demo, q4, "web"),
            await router.hand_off(4, 170, "A", demo, q4, "email"),
            await router.hand_off(5, 180, "A", demo, q4, "email"),
            await router.hand_off(6, 190, "A", demo, ("q4-webinar", "newsletter"), "email"),
        ]
        leads += [
            await router.hand_off(hours, score, "B", ("email-click",), news, channel)
            for hours, score, channel in (
                (7, 110, "email"),
                (8, 102, "email"),
                (9, 104, "email"),
                (10, 106, "email"),
                (11, 112, "web"),
            )
        ]
        await router.hand_off(12, 120, "A", demo, (), "web")  # L12: pending
        for lead in leads[:7]:
            await router.act(lead, "accept")
        qualified = {"budget": "50k", "timeframe": "Q1"}
        await router.act(leads[0], "convert", "won", **qualified)
        await router.act(leads[1], "convert", **qualified)
        for lead, reason in zip(
            leads[7:], ("no_budget", "no_budget", "bad_timing", "not_decision_maker"), strict=True
        ):
            await router.act(lead, "reject", reason=reason)
    app = create_router(Settings(DATABASE_URL=database_url, LEADFLOW_ADMIN_KEY=TEST_ADMIN_KEY))
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://router") as client:
            yield client
    finally:
        await app.state.queries.engine.dispose()


def interval(rate: float, low: float, high: float) -> dict[str, float]:
    return {"rate": rate, "low": low, "high": high}


# key: (handed_off, accepted, returned, pending, acceptance, return_reasons,
#       opportunities, opportunity_rate, won, won_rate), as computed above
REASONS = {"no_budget": 2, "bad_timing": 1, "not_decision_maker": 1}
OVERALL = (
    12,
    7,
    4,
    1,
    interval(0.6364, 0.3538, 0.8483),
    REASONS,
    2,
    interval(0.1667, 0.047, 0.448),
    1,
    interval(0.0833, 0.0149, 0.3539),
)
RULES = {
    "demo-request": (
        7,
        6,
        0,
        1,
        interval(1.0, 0.6097, 1.0),
        {},
        2,
        interval(0.2857, 0.0822, 0.6411),
        1,
        interval(0.1429, 0.0257, 0.5131),
    ),
    "email-click": (
        5,
        1,
        4,
        0,
        interval(0.2, 0.0362, 0.6245),
        REASONS,
        0,
        interval(0.0, 0.0, 0.4345),
        0,
        interval(0.0, 0.0, 0.4345),
    ),
    "executive": (
        1,
        1,
        0,
        0,
        interval(1.0, 0.2065, 1.0),
        {},
        1,
        interval(1.0, 0.2065, 1.0),
        1,
        interval(1.0, 0.2065, 1.0),
    ),
}
FIELDS = (
    "handed_off",
    "accepted",
    "returned",
    "pending",
    "acceptance",
    "return_reasons",
    "opportunities",
    "opportunity_rate",
    "won",
    "won_rate",
)
# dimension: {key: (handed_off, accepted, returned, pending, acceptance rate)}
COUNTS = {
    "by_campaign": {
        "(none)": (1, 0, 0, 1, None),
        "newsletter": (6, 2, 4, 0, 0.3333),
        "q4-webinar": (6, 6, 0, 0, 1.0),
    },
    "by_source_channel": {"email": (7, 4, 3, 0, 0.5714), "web": (5, 3, 1, 1, 0.75)},
    "by_grade": {"A": (7, 6, 0, 1, 1.0), "B": (5, 1, 4, 0, 0.2)},
    "by_definitions_version": {VERSION: (12, 7, 4, 1, 0.6364)},
}


def figures(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[name] for name in FIELDS)


async def test_the_report_as_json_matches_the_hand_computation(
    router_api: httpx.AsyncClient,
) -> None:
    answer = await router_api.get(REPORT, params=PERIOD, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert (report["start"], report["end"], report["target"]) == (
        "2026-11-02T00:00:00Z",
        "2026-11-06T00:00:00Z",
        0.6,
    )
    assert figures(report["overall"]) == OVERALL
    assert {row["key"]: figures(row) for row in report["by_rule"]} == RULES
    for dimension, rows in COUNTS.items():
        found = {
            row["key"]: (
                row["handed_off"],
                row["accepted"],
                row["returned"],
                row["pending"],
                row["acceptance"] and row["acceptance"]["rate"],
            )
            for row in report[dimension]
        }
        assert found == rows, dimension
    newsletter = next(row for row in report["by_campaign"] if row["key"] == "newsletter")
    assert newsletter["acceptance"] == interval(0.3333, 0.0968, 0.7)

    (halve,) = report["suggestions"]
    assert halve["kind"] == "rule_points"
    assert halve["changes"] == [{"path": "scoring.rules[6].points", "from": 3.0, "to": 1.5}]
    assert (halve["evidence"]["acceptance_high"], halve["evidence"]["overall_acceptance"]) == (
        0.6245,
        0.6364,
    )
    candidate = parse_definitions(halve["candidate_document"], Path("candidate.yaml"))
    click = next(rule for rule in candidate.definitions.scoring.rules if rule.key == "email-click")
    assert click.points == 1.5


async def test_a_higher_target_suggests_the_hand_off_threshold_too(
    router_api: httpx.AsyncClient,
) -> None:
    answer = await router_api.get(REPORT, params={**PERIOD, "target": "0.8"}, headers=ADMIN)
    kinds = [suggestion["kind"] for suggestion in answer.json()["suggestions"]]
    assert kinds == ["rule_points", "hand_off_threshold"]
    threshold = answer.json()["suggestions"][1]
    assert threshold["changes"] == [{"path": "stages[2].entry.score", "from": 100.0, "to": 110.0}]
    evidence = threshold["evidence"]
    assert (evidence["verdicts_at_or_above"], evidence["accepted_at_or_above"]) == (8, 7)
    assert (evidence["acceptance_low"], evidence["acceptance_high"]) == (0.5291, 0.9776)
    candidate = parse_definitions(threshold["candidate_document"], Path("candidate.yaml"))
    assert next(s for s in candidate.definitions.stages if s.key == "sql").entry.score == 110


async def test_the_report_as_csv_holds_a_row_per_dimension_and_key(
    router_api: httpx.AsyncClient,
) -> None:
    answer = await router_api.get(REPORT, params=PERIOD, headers={**ADMIN, "Accept": "text/csv"})
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [(row["section"], row["key"]) for row in rows] == [
        ("overall", "all"),
        ("definitions_version", VERSION),
        ("campaign", "(none)"),
        ("campaign", "newsletter"),
        ("campaign", "q4-webinar"),
        ("source_channel", "email"),
        ("source_channel", "web"),
        ("grade", "A"),
        ("grade", "B"),
        ("rule", "demo-request"),
        ("rule", "email-click"),
        ("rule", "executive"),
    ]
    click = rows[10]
    assert {name: click[name] for name in list(click)[2:]} == {
        "handed_off": "5",
        "accepted": "1",
        "returned": "4",
        "pending": "0",
        "acceptance_rate": "0.2",
        "acceptance_low": "0.0362",
        "acceptance_high": "0.6245",
        "return_reasons": "no_budget: 2; bad_timing: 1; not_decision_maker: 1",
        "opportunities": "0",
        "opportunity_rate": "0.0",
        "opportunity_low": "0.0",
        "opportunity_high": "0.4345",
        "won": "0",
        "won_rate": "0.0",
        "won_low": "0.0",
        "won_high": "0.4345",
    }
    assert rows[2]["acceptance_rate"] == ""  # (none): no verdict yet


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"target": "1"}, "query.target"),
        ({"target": "0"}, "query.target"),
        ({"target": "most"}, "query.target"),
        ({"from": "2026-11-02T00:00:00"}, "query.from"),
    ],
)
async def test_bad_parameters_are_problems_naming_them(
    router_api: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    answer = await router_api.get(REPORT, params=params, headers=ADMIN)
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert [error["field"] for error in answer.json()["errors"]] == [field]
    assert (await router_api.get(REPORT, params=PERIOD)).status_code == 401

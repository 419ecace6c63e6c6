"""The routing fairness report against a scenario computed by hand.

The scenario goes through the real router: its service layer on this module's PostgreSQL,
called as the consumer and the follow-up loop call it, on a clock the test moves, with the
default definitions (dach: round_robin, emea: weighted, enterprise: companies of 1000 or
more; grade A must be accepted within 60 minutes; the second missed SLA escalates). Only
the roster's join times are set by hand: `created_at` is the database's clock, the
scenario runs on the router's. The period is [T0, T0 + 96 h); times are hours after T0.

dach (round_robin)
  -50    Ada joins (capacity 10)
  -24    L0 zero@alpha.de -> Ada (alpha.de is hers); accepted at -23:30   [before the period]
  -12    Ben joins (capacity 1)
    0    L1 one@beta.de -> Ben (never assigned)
    2    L2 two@gamma.de -> Ada (Ben is full); accepted 2:10              (10 min)
    2:30 L1's SLA (1:00) missed: reassigned to Ada (Ben excluded)       Ben: breach, away
    3    L3 three@alpha.de -> Ada as the account's owner
    3:15 Ada accepts L1 (45 min after 2:30); 3:30 accepts L3              (45, 30 min)
   48    Cleo joins (capacity 10): half the period
   49    L4 four@delta.de -> Cleo (never assigned); accepted 49:20       (20 min)
   50    L5 five@eps.de -> Ben (assigned longest ago); accepted 50:50     (50 min)
   51    L6 six@zeta.de -> Ada (Ben is full)
   52:30 L6's SLA missed: reassigned to Cleo                            Ada: breach, away
   54    L6's SLA missed again: escalated, stays with Cleo                 Cleo: breach
   60    L8 cio@alpha.de, 5000 people (team enterprise) -> Ada as owner; accepted 60:05 (5)
   96    L7 seven@eta.de -> Cleo                                           [after the period]

  Ada: received 5 (L2, L1, L3, L6, L8), 2 as owner, 3 by strategy; accepted 4 of 5 = 0.8,
       median of 5, 10, 30, 45 = 20 min; 1 breach (L6), 1 away (L6).
  Ben: received 2 (L1, L5); accepted 1 = 0.5, median 50; 1 breach, 1 away (L1).
  Cleo: received 2 (L4, L6); accepted 1 = 0.5, median 20; 1 breach (L6 escalated), 0 away.
  Shared: 3 + 2 + 2 = 7, split 1 : 1 : 0.5 (Cleo joined halfway) -> 2.8, 2.8, 1.4;
  ratios 3/2.8 = 1.0714, 2/2.8 = 0.7143, 2/1.4 = 1.4286, i.e. 15 : 10 : 20;
  Gini = (|15-10| + |15-20| + |10-20|) x 2 / (2 x 3^2 x 15) = 40/270 = 0.1481.

emea (weighted: lifetime assignments / weight, then who was assigned longest ago)
  -48    Emil joins (weight 2); -47 E0 -> Emil, accepted -46:54     [before the period]
  -46    Eva joins (weight 1);  -45 E00 -> Eva (0 < 1/2), accepted -44:54
  -44    Finn joins (weight 1)
   10    M1 -> Finn (0/1); accepted 10:15                                  (15 min)
   11    M2 buyer@gbco.co.uk -> Emil (1/2 < 1/1); accepted 11:30            (30 min)
   12    M3 -> Eva (all at 1: Eva assigned longest ago); accepted 12:40      (40 min)
   13    M4 -> Finn (Emil and Finn at 1: Finn at 10, Emil at 11)
   13:30 Finn deactivated: M1 (accepted), then M4 (before its 14:00 deadline: no breach)
         -> Emil (2/2 < Eva's 2/1, then 3/2 < 2); accepted 13:36 and 13:42   (6, 12 min)
   30    M5 cfo@gbco.co.uk -> Emil as the account's owner; accepted 30:04  (4 min)

  Emil: received 4 (M2, M1, M4, M5), 1 as owner, 3 by strategy; accepted 4 = 1.0,
        median of 4, 6, 12, 30 = 9 min.
  Eva: received 1, accepted 1, 40 min.
  Finn: received 2, accepted 1 (M1) = 0.5, median 15; 0 breaches, 2 away; inactive now,
        so no fair share, and his 2 stay out of the split.
  Shared: 3 + 1 = 4, split 2 : 1 -> 2.67, 1.33; ratios 1.125, 0.75;
  Gini = |1.125 - 0.75| x 2 / (2 x 2^2 x 0.9375) = 0.1.

americas (round_robin)
  -50    Ana joins
   70    A1 buyer@boston-labs.com -> Ana
   71:30 A1's SLA missed; nobody else can take it: queued, naming Ana   Ana: breach, away

  Ana: received 1, accepted 0 = 0.0, no median; 1 breach, 1 away. Alone: fair share 1,
       ratio 1, Gini 0.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.router.actions import SalesDesk
from services.router.bootstrap import create_app as create_router
from services.router.handlers import RouterService
from services.router.tables import reps
from shared.events import LeadProfile
from shared.settings import Settings
from shared.topics import LIFECYCLE
from tests.conftest import TEST_ADMIN_KEY
from tests.fakes.router import hand_off_event
from tests.integration.test_router import handoff_kinds, router_service
from tests.records import batch_of_one
from tests.stacks import ADMIN
from tests.unit.test_router_service import Clock

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday
PERIOD = {"from": "2026-11-02T00:00:00Z", "to": "2026-11-06T00:00:00Z"}  # 96 hours
SECOND_HALF = {"from": "2026-11-04T00:00:00Z", "to": "2026-11-06T00:00:00Z"}
REPORT = "/v1/reports/routing"


def at(hours: float, minutes: float = 0) -> datetime:
    return T0 + timedelta(hours=hours, minutes=minutes)


@dataclass
class Driver:
    """The real router's service layer on this module's database (test_router's
    `router_service`), on a clock the test moves."""

    service: RouterService
    engine: AsyncEngine
    clock: Clock
    offset: int = 0

    def when(self, hours: float, minutes: float = 0) -> Driver:
        self.clock.now = at(hours, minutes)
        return self

    @property
    def desk(self) -> SalesDesk:
        return SalesDesk(self.service.units, self.service.assigner)

    async def join(self, name: str, team: str, **fields: Any) -> str:
        """A rep joins the roster now (by the scenario's clock)."""
        rep_id, _ = await self.desk.create_rep({"name": name, "team": team, **fields})
        async with self.engine.begin() as connection:
            await connection.execute(
                update(reps).where(reps.c.id == rep_id).values(created_at=self.clock())
            )
        return rep_id

    async def hand_off(
        self, email: str, country: str = "DE", company_size: int | None = None
    ) -> str:
        """Scoring hands a lead over (grade A), as the consumer passes it on: a batch of
        one record with the offset to store after it."""
        lead_id = str(uuid.uuid4())
        profile = LeadProfile(email=email, country=country, company_size=company_size)
        value = hand_off_event(lead_id, profile, self.clock()).model_dump_json().encode()
        await self.service.handle_lifecycle(batch_of_one(LIFECYCLE.name, value, self.offset))
        self.offset += 1
        return lead_id

    async def accept(self, rep_id: str, lead_id: str) -> None:
        await self.desk.act(rep_id, lead_id, "accept", {})


@dataclass(frozen=True)
class Scenario:
    database_url: str
    leads: dict[str, str]


@pytest.fixture(scope="module")
async def scenario(database_url: str) -> Scenario:
    settings = Settings(DATABASE_URL=database_url)
    engine = create_async_engine(database_url)
    uk = "GB"
    try:
        async with router_service(settings, clock := Clock(T0)) as service:
            router = Driver(service, engine, clock)
            ada = await router.when(-50).join("Ada", "dach", capacity=10)
            await router.join("Ana", "americas", capacity=10)
            emil = await router.when(-48).join("Emil", "emea", capacity=10, weight=2)
            e0 = await router.when(-47).hand_off("e0@emea-one.co.uk", uk)
            await router.when(-46, 54).accept(emil, e0)
            eva = await router.when(-46).join("Eva", "emea", capacity=10, weight=1)
            e00 = await router.when(-45).hand_off("e00@emea-two.co.uk", uk)
            await router.when(-44, 54).accept(eva, e00)
            finn = await router.when(-44).join("Finn", "emea", capacity=10, weight=1)
            l0 = await router.when(-24).hand_off("zero@alpha.de")
            await router.when(-23, 30).accept(ada, l0)
            ben = await router.when(-12).join("Ben", "dach", capacity=1)

            l1 = await router.when(0).hand_off("one@beta.de")
            l2 = await router.when(2).hand_off("two@gamma.de")
            await router.when(2, 10).accept(ada, l2)
            assert await router.when(2, 30).service.handle_due_slas() == 1  # L1
            l3 = await router.when(3).hand_off("three@alpha.de")
            await router.when(3, 15).accept(ada, l1)
            await router.when(3, 30).accept(ada, l3)

            m1 = await router.when(10).hand_off("m1@one-uk.co.uk", uk)
            await router.when(10, 15).accept(finn, m1)
            m2 = await router.when(11).hand_off("buyer@gbco.co.uk", uk)
            await router.when(11, 30).accept(emil, m2)
            m3 = await router.when(12).hand_off("m3@three-uk.co.uk", uk)
            await router.when(12, 40).accept(eva, m3)
            m4 = await router.when(13).hand_off("m4@four-uk.co.uk", uk)
            await router.when(13, 30).desk.update_rep(finn, {"active": False})
            await router.when(13, 36).accept(emil, m1)
            await router.when(13, 42).accept(emil, m4)
            m5 = await router.when(30).hand_off("cfo@gbco.co.uk", uk)
            await router.when(30, 4).accept(emil, m5)

            cleo = await router.when(48).join("Cleo", "dach", capacity=10)
            l4 = await router.when(49).hand_off("four@delta.de")
            await router.when(49, 20).accept(cleo, l4)
            l5 = await router.when(50).hand_off("five@eps.de")
            await router.when(50, 50).accept(ben, l5)
            l6 = await router.when(51).hand_off("six@zeta.de")
            assert await router.when(52, 30).service.handle_due_slas() == 1  # L6, Ada's
            assert await router.when(54).service.handle_due_slas() == 1  # L6, Cleo's
            l8 = await router.when(60).hand_off("cio@alpha.de", company_size=5000)
            await router.when(60, 5).accept(ada, l8)
            a1 = await router.when(70).hand_off("buyer@boston-labs.com", "US")
            assert await router.when(71, 30).service.handle_due_slas() == 1  # A1: queued
            await router.when(96).hand_off("seven@eta.de")
    finally:
        await engine.dispose()
    return Scenario(database_url, {"L1": l1, "L6": l6, "M1": m1, "M4": m4, "A1": a1})


@pytest.fixture(scope="module")
async def router_api(scenario: Scenario) -> AsyncIterator[httpx.AsyncClient]:
    """The router's routes without its lifespan: no consumer, no follow-up loop to move
    the scenario's leads on by the real clock."""
    settings = Settings(DATABASE_URL=scenario.database_url, LEADFLOW_ADMIN_KEY=TEST_ADMIN_KEY)
    app = create_router(settings)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://router") as client:
            yield client
    finally:
        await app.state.queries.engine.dispose()


# name: (team, active, available_share, strategy_weight, received, as_account_owner,
#        by_strategy, fair_share, ratio_to_fair_share, accepted, acceptance_rate,
#        sla_breaches, reassigned_away, median_minutes_to_accept), as computed above
REPS = {
    "Ana": ("americas", True, 1.0, 1.0, 1, 0, 1, 1.0, 1.0, 0, 0.0, 1, 1, None),
    "Ada": ("dach", True, 1.0, 1.0, 5, 2, 3, 2.8, 1.0714, 4, 0.8, 1, 1, 20.0),
    "Ben": ("dach", True, 1.0, 1.0, 2, 0, 2, 2.8, 0.7143, 1, 0.5, 1, 1, 50.0),
    "Cleo": ("dach", True, 0.5, 1.0, 2, 0, 2, 1.4, 1.4286, 1, 0.5, 1, 0, 20.0),
    "Emil": ("emea", True, 1.0, 2.0, 4, 1, 3, 2.67, 1.125, 4, 1.0, 0, 0, 9.0),
    "Eva": ("emea", True, 1.0, 1.0, 1, 0, 1, 1.33, 0.75, 1, 1.0, 0, 0, 40.0),
    "Finn": ("emea", False, 0.0, 1.0, 2, 0, 2, 0.0, None, 1, 0.5, 0, 2, 15.0),
}
REP_FIELDS = (
    "team",
    "active",
    "available_share",
    "strategy_weight",
    "received",
    "as_account_owner",
    "by_strategy",
    "fair_share",
    "ratio_to_fair_share",
    "accepted",
    "acceptance_rate",
    "sla_breaches",
    "reassigned_away",
    "median_minutes_to_accept",
)
# team: (strategy, rep_count, received, as_account_owner, by_strategy, shared, gini)
TEAMS = {
    "americas": ("round_robin", 1, 1, 0, 1, 1, 0.0),
    "dach": ("round_robin", 3, 9, 2, 7, 7, 0.1481),
    "emea": ("weighted", 3, 7, 1, 6, 4, 0.1),
}
TEAM_FIELDS = ("strategy", "rep_count", "received", "as_account_owner", "by_strategy", "shared")


async def test_the_router_logged_the_scenario_as_planned(scenario: Scenario) -> None:
    """The moves the hand computation counts on (who got what is in the report test)."""
    url, leads = scenario.database_url, scenario.leads
    assert await handoff_kinds(url, leads["L1"]) == ["assigned", "reassigned", "accepted"]
    assert await handoff_kinds(url, leads["L6"]) == ["assigned", "reassigned", "escalated"]
    assert await handoff_kinds(url, leads["M1"]) == [
        "assigned",
        "accepted",
        "reassigned",
        "accepted",
    ]
    assert await handoff_kinds(url, leads["M4"]) == ["assigned", "reassigned", "accepted"]
    assert await handoff_kinds(url, leads["A1"]) == ["assigned", "queued"]


async def test_the_report_as_json_matches_the_hand_computation(
    router_api: httpx.AsyncClient,
) -> None:
    answer = await router_api.get(REPORT, params=PERIOD, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    report = answer.json()
    assert (report["start"], report["end"]) == ("2026-11-02T00:00:00Z", "2026-11-06T00:00:00Z")
    assert [rep["name"] for rep in report["reps"]] == list(REPS)  # by team, then name
    for rep in report["reps"]:
        assert tuple(rep[key] for key in REP_FIELDS) == REPS[rep["name"]], rep["name"]
    assert [team["team"] for team in report["teams"]] == list(TEAMS)
    for team in report["teams"]:
        expected = TEAMS[team["team"]]
        assert tuple(team[key] for key in TEAM_FIELDS) == expected[:-1], team["team"]
        assert team["gini"] == pytest.approx(expected[-1], abs=1e-4)


async def test_the_report_as_csv_holds_the_same_rows(router_api: httpx.AsyncClient) -> None:
    as_json = (await router_api.get(REPORT, params=PERIOD, headers=ADMIN)).json()
    answer = await router_api.get(REPORT, params=PERIOD, headers={**ADMIN, "Accept": "text/csv"})
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    reps_rows = [row for row in rows if row["section"] == "rep"]
    team_rows = [row for row in rows if row["section"] == "team"]
    assert len(reps_rows) == len(REPS)
    assert len(team_rows) == len(TEAMS)

    def cell(value: object) -> str:
        return "" if value is None else str(value)

    for row, rep in zip(reps_rows, as_json["reps"], strict=True):
        assert {key: row[key] for key in rep} == {key: cell(value) for key, value in rep.items()}
    for row, team in zip(team_rows, as_json["teams"], strict=True):
        assert {key: row[key] for key in team} == {key: cell(value) for key, value in team.items()}
    ada = next(row for row in reps_rows if row["name"] == "Ada")
    assert (ada["received"], ada["as_account_owner"], ada["fair_share"]) == ("5", "2", "2.8")
    finn = next(row for row in reps_rows if row["name"] == "Finn")
    assert (finn["fair_share"], finn["ratio_to_fair_share"], finn["active"]) == (
        "0.0",
        "",
        "False",
    )
    dach = next(row for row in team_rows if row["team"] == "dach")
    assert (dach["shared"], dach["gini"]) == ("7", "0.1481")


async def test_a_shorter_period_counts_only_its_hand_offs(router_api: httpx.AsyncClient) -> None:
    """Hours 48 to 96: dach received L4, L5, L6 (rotation) and L8 (Ada, as owner); Cleo
    joined at its start, so the 4 shared split 1 : 1 : 1 -> 1.33 each; Ada 1, Ben 1, Cleo
    2: ratios 0.75, 0.75, 1.5, Gini of 1 : 1 : 2 = (0 + 1 + 1) x 2 / (2 x 9 x 4/3) = 1/6.
    emea received nothing: Emil and Eva are listed, with nothing to be unfair about; Finn,
    inactive and without hand-offs, is not. americas: A1 at hour 70, as before."""
    report = (await router_api.get(REPORT, params=SECOND_HALF, headers=ADMIN)).json()
    reps_by_name = {rep["name"]: rep for rep in report["reps"]}
    assert list(reps_by_name) == ["Ana", "Ada", "Ben", "Cleo", "Emil", "Eva"]
    figures = [
        (rep["available_share"], rep["received"], rep["as_account_owner"], rep["fair_share"])
        for rep in report["reps"]
    ]
    assert figures == [
        (1.0, 1, 0, 1.0),
        (1.0, 2, 1, 1.33),
        (1.0, 1, 0, 1.33),
        (1.0, 2, 0, 1.33),
        (1.0, 0, 0, 0.0),
        (1.0, 0, 0, 0.0),
    ]
    assert reps_by_name["Ada"]["sla_breaches"] == 1  # L6, received in this period
    assert reps_by_name["Emil"]["acceptance_rate"] is None
    teams = {team["team"]: team for team in report["teams"]}
    assert (teams["dach"]["shared"], teams["dach"]["gini"]) == (4, 0.1667)
    assert (teams["emea"]["received"], teams["emea"]["gini"]) == (0, None)


async def test_the_route_wants_the_admin_key_and_zoned_times(
    router_api: httpx.AsyncClient,
) -> None:
    """As the other reports: 401 without the admin key, 422 for a time without a zone; a
    period that ends before it starts holds nothing."""
    assert (await router_api.get(REPORT, params=PERIOD)).status_code == 401
    naive = await router_api.get(REPORT, params={"from": "2026-11-02T00:00:00"}, headers=ADMIN)
    assert naive.status_code == 422
    assert naive.headers["content-type"] == "application/problem+json"
    garbled = await router_api.get(REPORT, params={"to": "yesterday"}, headers=ADMIN)
    assert garbled.status_code == 422
    inverted = {"from": "2026-11-06T00:00:00Z", "to": "2026-11-02T00:00:00Z"}
    empty = await router_api.get(REPORT, params=inverted, headers=ADMIN)
    assert (empty.json()["teams"], empty.json()["reps"]) == ([], [])

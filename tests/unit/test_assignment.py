"""The assignment engine: capacity and availability respected, fair, account owners first."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.router.domain import (
    LeadStatus,
    LeadToRoute,
    Rep,
    Roster,
    account_domain,
    allowed_actions,
    choose_rep,
    is_available,
    missing_requirements,
    sla_deadline,
    team_for,
    territory_matches,
)
from shared.definitions import load_definitions

pytestmark = pytest.mark.unit

DEFINITIONS = load_definitions(
    Path(__file__).resolve().parents[2] / "lead-definitions.yaml"
).definitions
assert DEFINITIONS.routing is not None
ROUTING = DEFINITIONS.routing
TEAMS = {team.key: team for team in ROUTING.teams}
MONDAY_NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def rep(n: int, **changes: object) -> Rep:
    return replace(Rep(id=f"rep-{n}", team="dach", capacity=5, open_leads=0), **changes)  # type: ignore[arg-type]


reps_strategy = st.lists(
    st.builds(
        Rep,
        id=st.uuids().map(str),
        team=st.sampled_from(["dach", "emea"]),
        capacity=st.integers(min_value=1, max_value=5),
        open_leads=st.integers(min_value=0, max_value=6),
        active=st.booleans(),
        out_of_office_until=st.sampled_from(
            [None, MONDAY_NOON + timedelta(days=1), MONDAY_NOON - timedelta(days=1)]
        ),
        timezone=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"]),
        work_start_hour=st.integers(min_value=0, max_value=12),
        work_end_hour=st.integers(min_value=12, max_value=24),
    ),
    max_size=8,
)


@given(
    reps_strategy,
    st.sampled_from(["dach", "emea", "enterprise"]),
    # A clock's now: the years at the ends of datetime's range overflow in a rep's time zone.
    st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC)),
)
def test_never_assigned_to_a_rep_at_capacity_or_unavailable(
    reps: list[Rep], team: str, now: datetime
) -> None:
    choice = choose_rep(LeadToRoute("l", "A"), TEAMS[team], reps, now)
    if choice is not None:
        chosen = next(r for r in reps if r.id == choice.rep_id)
        assert chosen.open_leads < chosen.capacity
        assert is_available(chosen, now)


@given(st.integers(min_value=1, max_value=6), st.integers(min_value=1, max_value=60))
def test_round_robin_is_fair_over_any_run(size: int, leads: int) -> None:
    # Every choice at the same moment: the rotation goes by turns, not by the clock.
    reps = [rep(n, capacity=1_000) for n in range(size)]
    counts = dict.fromkeys((r.id for r in reps), 0)
    for turn in range(leads):
        choice = choose_rep(LeadToRoute("l", "B"), TEAMS["dach"], reps, MONDAY_NOON)
        assert choice is not None
        counts[choice.rep_id] += 1
        reps = [replace(r, last_turn=turn) if r.id == choice.rep_id else r for r in reps]
    assert max(counts.values()) - min(counts.values()) <= 1


@given(reps_strategy, st.sampled_from(["dach", "emea"]))
def test_the_account_owner_wins_over_the_strategy_whenever_they_can_take_it(
    reps: list[Rep], team: str
) -> None:
    for owner in reps:
        choice = choose_rep(
            LeadToRoute("l", "A", account_domain="acme.com"),
            TEAMS[team],
            reps,
            MONDAY_NOON,
            account_owner=owner.id,
        )
        if owner.open_leads < owner.capacity and is_available(owner, MONDAY_NOON):
            assert choice is not None
            assert choice.rep_id == owner.id


def test_strategies_pick_the_expected_rep() -> None:
    reps = [
        rep(1, open_leads=3, assigned_total=2, weight=1),
        rep(2, open_leads=1, assigned_total=3, weight=3),
    ]
    least = choose_rep(
        LeadToRoute("l", "A"),
        TEAMS["enterprise"],
        [replace(r, team="enterprise") for r in reps],
        MONDAY_NOON,
    )
    assert least is not None
    assert least.rep_id == "rep-2"
    weighted = choose_rep(
        LeadToRoute("l", "A"), TEAMS["emea"], [replace(r, team="emea") for r in reps], MONDAY_NOON
    )
    assert weighted is not None
    assert weighted.rep_id == "rep-2"  # 3/3 < 2/1


def test_nobody_free_means_the_lead_is_queued() -> None:
    full = [rep(1, open_leads=5), rep(2, active=False)]
    assert choose_rep(LeadToRoute("l", "A"), TEAMS["dach"], full, MONDAY_NOON) is None


def test_a_territory_can_be_a_region() -> None:
    from shared.definitions.model import Team, Territory

    apac = Team(key="apac", name="APAC", manager="m", territory=Territory(regions=("APAC",)))
    assert territory_matches(apac, LeadToRoute("l", "A", country="JP"))
    assert not territory_matches(apac, LeadToRoute("l", "A", country="DE"))
    assert not territory_matches(apac, LeadToRoute("l", "A"))


def test_territories_and_working_hours() -> None:
    assert team_for(ROUTING, LeadToRoute("l", "A", country="DE")).key == "dach"
    assert (
        team_for(ROUTING, LeadToRoute("l", "A", country="DE", company_size=5000)).key
        == "enterprise"
    )
    assert team_for(ROUTING, LeadToRoute("l", "A", country="BR")).key == "americas"
    tokyo = rep(
        1, timezone="Asia/Tokyo", work_start_hour=9, work_end_hour=17, work_days=(0, 1, 2, 3, 4)
    )
    assert not is_available(tokyo, MONDAY_NOON)  # 21:00 in Tokyo
    assert is_available(tokyo, MONDAY_NOON - timedelta(hours=8))  # 13:00 in Tokyo
    assert account_domain("ada@Acme.com") == "acme.com"
    assert account_domain("ada@gmail.com") is None


def test_sla_and_actions_follow_the_definitions() -> None:
    assert sla_deadline(ROUTING, "A", MONDAY_NOON) == MONDAY_NOON + timedelta(hours=1)
    assert allowed_actions(DEFINITIONS, "sql", LeadStatus.ASSIGNED) == ["accept", "reject"]
    assert allowed_actions(DEFINITIONS, "sal", LeadStatus.ACCEPTED) == [
        "qualify",
        "convert",
        "won",
        "lost",
        "reject",
    ]
    assert allowed_actions(DEFINITIONS, "won", LeadStatus.CLOSED) == []
    assert missing_requirements(DEFINITIONS, "convert", {"budget": "50k"}) == ["timeframe"]


def test_weighted_round_robin_gives_each_rep_their_exact_share() -> None:
    roster = Roster.of(
        [
            rep(1, team="emea", capacity=1_000, weight=2),
            rep(2, team="emea", capacity=1_000),
            rep(3, team="emea", capacity=1_000),
        ],
        {},
    )
    for _ in range(100):
        choice = choose_rep(
            LeadToRoute("l", "B"), TEAMS["emea"], roster.candidates("emea", None), MONDAY_NOON
        )
        assert choice is not None
        roster.took(choice.rep_id, None)
    assert [r.assigned_total for r in roster.candidates("emea", None)] == [50, 25, 25]

"""Routing fairness, pure: availability, fair shares by strategy, the Gini coefficient."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.router.domain import LeadToRoute, Rep, choose_rep
from services.router.domain.fairness import (
    Member,
    Received,
    available_share,
    fair_shares,
    gini,
    is_account_owner_choice,
    routing_fairness,
    strategy_weight,
    team_fairness,
)
from shared.definitions.model import Team

pytestmark = pytest.mark.unit

START = datetime(2026, 11, 2, tzinfo=UTC)
END = START + timedelta(days=4)
LATER = END + timedelta(days=30)  # the report is asked for well after the period
AWAY = frozenset({"owner"})


def member(
    rep_id: str,
    team: str = "dach",
    *,
    joined: datetime = START - timedelta(days=7),
    active: bool = True,
    weight: float = 1.0,
    capacity: int = 10,
) -> Member:
    return Member(rep_id, rep_id.title(), team, weight, capacity, active, joined)


# -- which hand-offs went to an account's owner --------------------------------------------


@pytest.mark.parametrize("strategy", ["round_robin", "weighted", "least_loaded"])
def test_only_choose_reps_owner_choice_reads_as_one(strategy: str) -> None:
    team = Team.model_validate(
        {"key": "dach", "name": "DACH", "manager": "dach-lead", "strategy": strategy}
    )
    reps = [Rep("owner", "emea", 5, 0), Rep("other", "dach", 5, 0)]
    lead = LeadToRoute("lead", "A", account_domain="alpha.de")
    now = START + timedelta(hours=12)
    owned = choose_rep(lead, team, reps, now, account_owner="owner")
    by_strategy = choose_rep(lead, team, reps, now, account_owner=None)
    owner_away = choose_rep(lead, team, reps, now, account_owner="owner", exclude=AWAY)
    assert owned is not None
    assert is_account_owner_choice(owned.reason)
    for chosen in (by_strategy, owner_away):
        assert chosen is not None
        assert chosen.rep_id == "other"
        assert not is_account_owner_choice(chosen.reason)
    assert not is_account_owner_choice(None)


# -- time available ---------------------------------------------------------------------------


def test_available_share_is_the_time_on_the_roster_and_active() -> None:
    assert available_share(member("ada"), START, END, LATER) == 1.0
    halfway = member("cleo", joined=START + timedelta(days=2))
    assert available_share(halfway, START, END, LATER) == 0.5
    assert available_share(member("late", joined=END), START, END, LATER) == 0.0
    assert available_share(member("gone", active=False), START, END, LATER) == 0.0


def test_time_still_to_come_is_nobodys_and_an_empty_period_has_no_time() -> None:
    now = START + timedelta(days=2)  # the period runs two more days
    joined_yesterday = member("new", joined=START + timedelta(days=1))
    assert available_share(joined_yesterday, START, END, now) == 0.5
    assert available_share(member("ada"), END, START, LATER) == 0.0  # from after to
    assert available_share(member("ada"), START, END, START) == 0.0  # nothing yet


def test_each_strategy_weighs_reps_by_its_own_measure() -> None:
    rep = member("ada", weight=2.5, capacity=8)
    assert strategy_weight("round_robin", rep) == 1.0
    assert strategy_weight("weighted", rep) == 2.5
    assert strategy_weight("least_loaded", rep) == 8.0
    assert strategy_weight(None, rep) == 1.0  # a team the definitions no longer have


def test_fair_shares_split_in_proportion() -> None:
    assert fair_shares(7, [1.0, 1.0, 0.5]) == pytest.approx([2.8, 2.8, 1.4])
    assert fair_shares(6, [2.0, 1.0, 0.0]) == pytest.approx([4.0, 2.0, 0.0])
    assert fair_shares(5, [0.0, 0.0]) == [0.0, 0.0]
    assert fair_shares(0, [1.0, 1.0]) == [0.0, 0.0]


# -- the Gini coefficient -------------------------------------------------------------------


def test_gini() -> None:
    assert gini([1.0, 1.0, 1.0]) == 0.0
    assert gini([2.0]) == 0.0  # one rep is always fair to themselves
    assert gini([0.0, 0.0, 3.0]) == pytest.approx(2 / 3)  # one has all: (n-1)/n
    # |15-10| + |15-20| + |10-20| = 20, twice over ordered pairs: 40 / (2 * 3^2 * 15)
    assert gini([15 / 14, 10 / 14, 20 / 14]) == pytest.approx(40 / 270)
    assert gini([0.75, 1.125]) == pytest.approx(0.1)
    assert gini([]) is None
    assert gini([0.0, 0.0]) is None  # nothing to be unequal about


# -- a team ---------------------------------------------------------------------------------


def test_account_owner_hand_offs_stay_out_of_the_split() -> None:
    """Ada 5 (2 as owner), Ben 2, Cleo 2 after joining halfway: 7 shared by the strategy,
    split 1 : 1 : 0.5 -> 2.8, 2.8, 1.4; ratios 3/2.8, 2/2.8, 2/1.4 = 15:10:20 / 14."""
    reps = [member("ada"), member("ben"), member("cleo", joined=START + timedelta(days=2))]
    received = {"ada": Received(5, 2), "ben": Received(2), "cleo": Received(2)}
    team = team_fairness("dach", "round_robin", reps, received, START, END, LATER)
    assert [r.fair_share for r in team.reps] == pytest.approx([2.8, 2.8, 1.4])
    assert [r.ratio for r in team.reps] == pytest.approx([15 / 14, 10 / 14, 20 / 14])
    assert (team.received, team.as_account_owner, team.by_strategy, team.shared) == (9, 2, 7, 7)
    assert team.gini == pytest.approx(40 / 270)


def test_a_rep_without_a_fair_share_keeps_their_row_out_of_the_split() -> None:
    """Emil (weight 2) 3, Eva (weight 1) 1; Finn, inactive now, 2: the 4 of the available
    reps split 2 : 1."""
    reps = [member("emil", weight=2), member("eva"), member("finn", active=False)]
    received = {"emil": Received(4, 1), "eva": Received(1), "finn": Received(2)}
    team = team_fairness("emea", "weighted", reps, received, START, END, LATER)
    emil, eva, finn = team.reps
    assert (emil.fair_share, eva.fair_share, finn.fair_share) == pytest.approx((8 / 3, 4 / 3, 0))
    assert [emil.ratio, eva.ratio] == pytest.approx([1.125, 0.75])
    assert finn.ratio is None
    assert (team.by_strategy, team.shared) == (6, 4)
    assert team.gini == pytest.approx(0.1)


def test_least_loaded_splits_by_capacity_and_a_zero_capacity_gets_no_share() -> None:
    reps = [member("big", capacity=30), member("small", capacity=10), member("none", capacity=0)]
    received = {"big": Received(6), "small": Received(2)}
    team = team_fairness("enterprise", "least_loaded", reps, received, START, END, LATER)
    assert [r.fair_share for r in team.reps] == pytest.approx([6.0, 2.0, 0.0])
    assert [r.ratio for r in team.reps] == [1.0, 1.0, None]
    assert team.gini == 0.0


def test_one_rep_is_fair_and_nobody_receiving_anything_has_no_figure() -> None:
    alone = team_fairness(
        "dach", "round_robin", [member("ada")], {"ada": Received(3)}, START, END, LATER
    )
    assert (alone.reps[0].fair_share, alone.reps[0].ratio, alone.gini) == (3.0, 1.0, 0.0)
    idle = team_fairness("dach", "round_robin", [member("a"), member("b")], {}, START, END, LATER)
    assert [(r.fair_share, r.ratio) for r in idle.reps] == [(0.0, None), (0.0, None)]
    assert (idle.received, idle.gini) == (0, None)
    owners_only = team_fairness(
        "dach", "round_robin", [member("ada")], {"ada": Received(2, 2)}, START, END, LATER
    )
    assert (owners_only.reps[0].fair_share, owners_only.gini) == (0.0, None)


def test_nobody_available_has_no_fair_share() -> None:
    reps = [member("gone", active=False), member("late", joined=END + timedelta(days=1))]
    team = team_fairness("dach", "round_robin", reps, {"gone": Received(4)}, START, END, LATER)
    assert [r.fair_share for r in team.reps] == [0.0, 0.0]
    assert (team.by_strategy, team.shared, team.gini) == (4, 0, None)


def test_the_report_lists_reps_who_were_available_or_received_by_team_and_name() -> None:
    reps = [
        member("zoe", "emea"),
        member("ada"),
        member("gone", "emea", active=False),
        member("left", "emea", active=False),
        member("later", joined=END),
    ]
    teams = routing_fairness(
        reps,
        {"gone": Received(1)},
        {"dach": "round_robin", "emea": "weighted"},
        START,
        END,
        LATER,
    )
    assert [(t.team, t.strategy, [r.member.rep_id for r in t.reps]) for t in teams] == [
        ("dach", "round_robin", ["ada"]),
        ("emea", "weighted", ["gone", "zoe"]),
    ]

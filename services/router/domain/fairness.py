"""Routing fairness: each rep's fair share of their team's hand-offs, and how unequal the
hand-offs they received were against those shares. Pure: no database, no clock.

A team's hand-offs chosen by its strategy (not given to an account's owner) are split
into fair shares by what the strategy weighs reps by (round_robin: everyone alike;
weighted: the rep's weight; least_loaded: their capacity) times the share of the period
the rep was available. The router keeps no history of its roster, so "available" is what
the roster tells now: from when the rep joined (`created_at`) to the end of the period,
and not at all for a rep who is inactive now. The hand-offs of reps without a fair share
stay in their own row but out of the split, so that the split sums to what the reps who
have a share received. The team's figure is the Gini coefficient of received ÷ fair
share over the reps who have a fair share: 0 when every rep got exactly their share.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

# How `choose_rep` words the choice of an account's owner (the account's domain follows);
# the other reasons name the team's strategy. tests/unit/test_fairness.py holds the two
# together.
ACCOUNT_OWNER_REASON = "owns the account "


def is_account_owner_choice(reason: str | None) -> bool:
    """Whether a hand-off's reason says the rep got the lead as the account's owner."""
    return reason is not None and reason.startswith(ACCOUNT_OWNER_REASON)


@dataclass(frozen=True)
class Member:
    """A rep on the roster, as the split sees them."""

    rep_id: str
    name: str
    team: str
    weight: float
    capacity: int
    active: bool
    joined_at: datetime


@dataclass(frozen=True)
class Received:
    """The hand-offs a rep received in the period, and how many of them as account owner."""

    total: int
    as_account_owner: int = 0

    @property
    def by_strategy(self) -> int:
        return self.total - self.as_account_owner


def available_share(member: Member, start: datetime, end: datetime, now: datetime) -> float:
    """The share of the period (up to now: time still to come is nobody's) in which the rep
    was on the roster and active, between 0 and 1."""
    until = min(end, now)
    if not member.active or until <= start:
        return 0.0
    since = max(start, member.joined_at)
    return max(0.0, (until - since) / (until - start))


def strategy_weight(strategy: str | None, member: Member) -> float:
    """What the team's strategy weighs the rep by; alike for a team the definitions lost."""
    if strategy == "weighted":
        return member.weight
    if strategy == "least_loaded":
        return float(member.capacity)
    return 1.0


def fair_shares(pool: float, weights: Sequence[float]) -> list[float]:
    """`pool` split in proportion to `weights` (all 0 when no weight is positive)."""
    total = sum(weight for weight in weights if weight > 0)
    if total <= 0:
        return [0.0 for _ in weights]
    return [pool * max(weight, 0.0) / total for weight in weights]


def gini(values: Sequence[float]) -> float | None:
    """The Gini coefficient of non-negative values: 0 when all are equal, up to (n-1)/n
    when one has everything. None when there is nothing to compare: no values, or all 0."""
    if not values or sum(values) <= 0:
        return None
    ordered = sorted(values)
    count, total = len(ordered), sum(ordered)
    # Sum over pairs of |x_i - x_j| / (2 n^2 mean), from the sorted values in one pass.
    weighted = sum((2 * rank - count - 1) * value for rank, value in enumerate(ordered, 1))
    return weighted / (count * total)


@dataclass(frozen=True)
class RepShare:
    member: Member
    received: Received
    available: float
    weight: float
    fair_share: float

    @property
    def ratio(self) -> float | None:
        """Received by the strategy ÷ fair share: 1 is fair; None without a fair share."""
        return self.received.by_strategy / self.fair_share if self.fair_share > 0 else None


@dataclass(frozen=True)
class TeamFairness:
    team: str
    strategy: str | None
    reps: list[RepShare]

    @property
    def received(self) -> int:
        return sum(rep.received.total for rep in self.reps)

    @property
    def as_account_owner(self) -> int:
        return sum(rep.received.as_account_owner for rep in self.reps)

    @property
    def by_strategy(self) -> int:
        return sum(rep.received.by_strategy for rep in self.reps)

    @property
    def shared(self) -> int:
        """The hand-offs split into fair shares: those of the reps who have one."""
        return sum(rep.received.by_strategy for rep in self.reps if rep.fair_share > 0)

    @property
    def gini(self) -> float | None:
        ratios = [rep.ratio for rep in self.reps if rep.ratio is not None]
        return gini(ratios)


def team_fairness(
    team: str,
    strategy: str | None,
    members: Sequence[Member],
    received: Mapping[str, Received],
    start: datetime,
    end: datetime,
    now: datetime,
) -> TeamFairness:
    """Each member's fair share of what the team's strategy handed to the members who were
    available in the period."""
    available = [available_share(member, start, end, now) for member in members]
    weights = [strategy_weight(strategy, member) for member in members]
    got = [received.get(member.rep_id, Received(0)) for member in members]
    in_split = [share * weight for share, weight in zip(available, weights, strict=True)]
    pool = sum(r.by_strategy for r, part in zip(got, in_split, strict=True) if part > 0)
    shares = fair_shares(pool, in_split)
    return TeamFairness(
        team,
        strategy,
        [
            RepShare(member, r, share, weight, fair)
            for member, r, share, weight, fair in zip(
                members, got, available, weights, shares, strict=True
            )
        ],
    )


def routing_fairness(
    members: Sequence[Member],
    received: Mapping[str, Received],
    strategies: Mapping[str, str],
    start: datetime,
    end: datetime,
    now: datetime,
) -> list[TeamFairness]:
    """Every team with a rep who was available in the period or received a hand-off in it,
    by team key; its reps by name. `strategies`: team key -> strategy."""
    listed = [
        member
        for member in members
        if member.rep_id in received or available_share(member, start, end, now) > 0
    ]
    teams = sorted({member.team for member in listed})
    return [
        team_fairness(
            team,
            strategies.get(team),
            sorted((m for m in listed if m.team == team), key=lambda m: (m.name, m.rep_id)),
            received,
            start,
            end,
            now,
        )
        for team in teams
    ]

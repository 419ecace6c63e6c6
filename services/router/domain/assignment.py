"""The assignment engine and the rules of follow-up. Pure: no database, no broker, no clock.

Who gets a sales-ready lead: the owner of its account if they can take it, else a rep of
the team whose territory the lead falls in, chosen by the team's strategy among the reps
who are available and below capacity. Nobody → the lead waits in the queue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from shared.definitions.model import Routing, Team
from shared.definitions.territory import LeadToRoute, lead_to_route, team_for, territory_matches

# The territory match lives in shared (scoring's shadow runs count hand-offs per team too);
# re-exported here, where the router's code and tests import it from.
__all__ = ["LeadToRoute", "lead_to_route", "team_for", "territory_matches"]

# Addresses of free mail providers say nothing about the account a lead belongs to.
FREE_MAIL_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "yahoo.com",
        "hotmail.com",
        "outlook.com",
        "live.com",
        "icloud.com",
        "gmx.de",
        "gmx.net",
        "web.de",
        "aol.com",
        "proton.me",
        "protonmail.com",
    }
)


@dataclass(frozen=True)
class Rep:
    id: str
    team: str
    capacity: int
    open_leads: int
    weight: float = 1.0
    active: bool = True
    out_of_office_until: datetime | None = None
    timezone: str = "UTC"
    work_start_hour: int = 0
    work_end_hour: int = 24
    work_days: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6)
    assigned_total: int = 0
    # The rotation turn they last got a lead at; None: never.
    last_turn: int | None = None


@dataclass(frozen=True)
class Choice:
    rep_id: str
    reason: str


def account_domain(email: str | None) -> str | None:
    """The company domain of an email address, unless it is a free mail provider."""
    if not email or "@" not in email:
        return None
    domain = email.rsplit("@", 1)[1].lower()
    return None if domain in FREE_MAIL_DOMAINS else domain


def is_available(rep: Rep, now: datetime) -> bool:
    """Active, not out of office, and within their working hours in their own time zone."""
    if not rep.active:
        return False
    if rep.out_of_office_until is not None and rep.out_of_office_until > now:
        return False
    local = now.astimezone(ZoneInfo(rep.timezone))
    return (
        local.weekday() in rep.work_days and rep.work_start_hour <= local.hour < rep.work_end_hour
    )


def can_take(rep: Rep, now: datetime) -> bool:
    return is_available(rep, now) and rep.open_leads < rep.capacity


def _longest_waiting(rep: Rep) -> tuple[int, str]:
    return (-1 if rep.last_turn is None else rep.last_turn, rep.id)


def choose_rep(
    lead: LeadToRoute,
    team: Team,
    reps: Sequence[Rep],
    now: datetime,
    *,
    account_owner: str | None = None,
    exclude: frozenset[str] = frozenset(),
) -> Choice | None:
    """The rep who gets the lead, and why; None when nobody can take it (queue it)."""
    by_id = {rep.id: rep for rep in reps}
    owner = by_id.get(account_owner or "")
    if owner is not None and owner.id not in exclude and can_take(owner, now):
        return Choice(owner.id, f"owns the account {lead.account_domain}")
    candidates = [
        rep for rep in reps if rep.team == team.key and rep.id not in exclude and can_take(rep, now)
    ]
    if not candidates:
        return None
    if team.strategy == "least_loaded":
        rep = min(candidates, key=lambda r: (r.open_leads / r.capacity, *_longest_waiting(r)))
        return Choice(rep.id, f"least loaded in {team.key} ({rep.open_leads}/{rep.capacity})")
    if team.strategy == "weighted":
        rep = min(candidates, key=lambda r: (r.assigned_total / r.weight, *_longest_waiting(r)))
        return Choice(rep.id, f"weighted round robin in {team.key} (weight {rep.weight:g})")
    rep = min(candidates, key=_longest_waiting)
    return Choice(rep.id, f"round robin in {team.key}")


def sla_deadline(routing: Routing, grade: str | None, assigned_at: datetime) -> datetime | None:
    """When the rep must have accepted the lead, by its grade; None if no SLA is set."""
    sla = routing.sla.get(grade or "")
    return assigned_at + timedelta(minutes=sla.accept_within_minutes) if sla else None

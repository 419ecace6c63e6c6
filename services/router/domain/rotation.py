"""The reps a routing transaction may give leads to, as it holds them: who is in which team,
how many open leads each has, whose turn it is, and who owns which account."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from services.router.domain.assignment import Rep


@dataclass
class Roster:
    reps: dict[str, Rep]
    # Account domain -> the rep who owns it, for the accounts of the leads being routed.
    owners: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, reps: Iterable[Rep], owners: Mapping[str, str]) -> Roster:
        return cls({rep.id: rep for rep in reps}, dict(owners))

    def owner_of(self, domain: str | None) -> str | None:
        return self.owners.get(domain) if domain else None

    def candidates(self, team: str, owner: str | None) -> list[Rep]:
        """The team's reps and the account's owner, in the order they were locked (by id)."""
        return sorted(
            (rep for rep in self.reps.values() if rep.team == team or rep.id == owner),
            key=lambda rep: rep.id,
        )

    def took(self, rep_id: str, domain: str | None) -> None:
        """The rep got a lead: one more open lead, the latest turn, and the lead's account
        if nobody owns it yet."""
        rep = self.reps[rep_id]
        turns = (r.last_turn for r in self.reps.values() if r.last_turn is not None)
        self.reps[rep_id] = replace(
            rep,
            open_leads=rep.open_leads + 1,
            assigned_total=rep.assigned_total + 1,
            last_turn=max(turns, default=0) + 1,
        )
        if domain:
            self.owners.setdefault(domain, rep_id)

    def released(self, rep_id: str | None) -> None:
        """A lead no longer counts against the rep (handed on to someone else, or queued)."""
        rep = self.reps.get(rep_id or "")
        if rep is not None:
            self.reps[rep.id] = replace(rep, open_leads=rep.open_leads - 1)

"""Identity resolution: which lead an interaction belongs to. Pure."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field


def identity_keys(email: str | None, anonymous_id: str | None) -> tuple[str, ...]:
    """The identities an interaction carries, the email first (it wins when two leads meet)."""
    keys = []
    if email:
        keys.append(f"email:{email}")
    if anonymous_id:
        keys.append(f"anon:{anonymous_id}")
    return tuple(keys)


@dataclass
class Resolution:
    lead_of: list[str] = field(default_factory=list)
    new_identities: dict[str, str] = field(default_factory=dict)
    new_leads: set[str] = field(default_factory=set)
    merged_into: dict[str, str] = field(default_factory=dict)


def resolve_identities(
    known: Mapping[str, str],
    interactions: Sequence[tuple[str, ...]],
    new_lead_id: Callable[[], str],
) -> Resolution:
    """One person is one lead: the same email or anonymous id means the same lead.

    When an anonymous visitor identifies (an interaction carrying both their cookie id and
    an email), the visitor's history joins the known lead: the anonymous lead is merged
    into the lead of the email.
    """
    mapping = dict(known)
    result = Resolution()

    def current(lead: str) -> str:
        while lead in result.merged_into:
            lead = result.merged_into[lead]
        return lead

    for keys in interactions:
        found = [current(mapping[key]) for key in keys if key in mapping]
        if found:
            lead = found[0]
            for other in found[1:]:
                if other != lead:
                    result.merged_into[other] = lead
        else:
            lead = new_lead_id()
            result.new_leads.add(lead)
        for key in keys:
            if mapping.get(key) != lead:
                mapping[key] = lead
                result.new_identities[key] = lead
        result.lead_of.append(lead)
    result.lead_of = [current(lead) for lead in result.lead_of]
    result.new_identities = {key: current(lead) for key, lead in result.new_identities.items()}
    result.new_leads -= set(result.merged_into)
    return result

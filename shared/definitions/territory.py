"""Which team's territory a lead falls in, by the definitions' routing rules. Pure.

The router assigns by it; scoring's shadow runs use it to count a candidate's hand-offs per
team, each side under its own definitions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.definitions.model import Routing, Team

# Sales regions by ISO 3166 country code, for territories drawn by region.
REGIONS: dict[str, list[str]] = {
    "EMEA": (  # noqa: SIM905 - a table people can read
        "AT BE BG CH CY CZ DE DK EE ES FI FR GB GR HR HU IE IS IT LI LT LU LV MT NL NO PL PT "
        "RO SE SI SK AE SA IL TR ZA EG NG KE MA QA"
    ).split(),
    "AMER": "US CA MX BR AR CL CO PE UY".split(),  # noqa: SIM905
    "APAC": "AU NZ JP KR CN HK TW SG MY TH ID PH VN IN".split(),  # noqa: SIM905
}
REGION_OF = {country: region for region, countries in REGIONS.items() for country in countries}


@dataclass(frozen=True)
class LeadToRoute:
    id: str
    grade: str | None
    country: str | None = None
    company_size: int | None = None
    industry: str | None = None
    products: tuple[str, ...] = ()
    account_domain: str | None = None


def lead_to_route(
    lead_id: str, grade: str | None, profile: Mapping[str, Any], domain: str | None
) -> LeadToRoute:
    """A lead as the assignment engine sees it: its grade, where it is and what it is."""
    return LeadToRoute(
        lead_id,
        grade,
        country=profile.get("country"),
        company_size=profile.get("company_size"),
        industry=profile.get("industry"),
        account_domain=domain,
    )


def territory_matches(team: Team, lead: LeadToRoute) -> bool:
    """A lead is in a team's territory if it meets every criterion the territory sets."""
    territory = team.territory
    if territory.countries and lead.country not in territory.countries:
        return False
    if territory.regions and REGION_OF.get(lead.country or "") not in territory.regions:
        return False
    if territory.industries and (lead.industry or "").lower() not in {
        i.lower() for i in territory.industries
    }:
        return False
    if territory.products and not set(territory.products) & set(lead.products):
        return False
    size = territory.company_size
    if size.min is None and size.max is None:
        return True
    return lead.company_size is not None and size.contains(lead.company_size)


def team_for(routing: Routing, lead: LeadToRoute) -> Team:
    """The first team (in the definitions' order) whose territory holds the lead; else the last."""
    return next(
        (team for team in routing.teams if territory_matches(team, lead)), routing.teams[-1]
    )

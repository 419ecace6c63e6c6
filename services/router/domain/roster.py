"""The rules of the rep roster."""

from __future__ import annotations

import hashlib

from services.router.domain.errors import UnknownTeam
from shared.definitions.model import Routing


def token_hash(token: str) -> str:
    """What is stored of a rep's bearer token: it is shown once, never kept."""
    return hashlib.sha256(token.encode()).hexdigest()


def check_team(routing: Routing, team: str | None) -> None:
    """A rep joins one of the teams the routing names (None: the team does not change)."""
    known = [t.key for t in routing.teams]
    if team is not None and team not in known:
        raise UnknownTeam(team, known)

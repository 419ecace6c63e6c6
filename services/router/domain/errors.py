"""What the router refuses, in the business's words; the HTTP layer maps each to a status."""

from __future__ import annotations


class LeadNotFound(LookupError):
    """No lead with that id has been handed to sales."""


class RepNotFound(LookupError):
    """No rep with that id."""


class NotYourLead(PermissionError):
    """A rep may act only on the leads assigned to them."""


class ActionNotAllowed(ValueError):
    """The action does not apply to the lead's current stage."""

    def __init__(self, action: str, stage: str | None, allowed: list[str]) -> None:
        super().__init__(f"{action} is not possible at stage {stage}")
        self.allowed = allowed


class MissingRequirements(ValueError):
    """The stage needs qualification fields the rep did not record."""

    def __init__(self, fields: list[str]) -> None:
        super().__init__(f"record {', '.join(fields)} first")
        self.fields = fields


class UnknownReason(ValueError):
    """The rejection reason is not one of the definitions' nurture reasons."""

    def __init__(self, reason: str, known: list[str]) -> None:
        super().__init__(f"unknown reason {reason!r}")
        self.known = known


class UnknownTeam(ValueError):
    """A rep belongs to one of the teams the definitions' routing names."""

    def __init__(self, team: str, known: list[str]) -> None:
        super().__init__("unknown team")
        self.team = team
        self.known = known


class SubscriptionNotFound(LookupError):
    """No webhook subscription (or no such delivery of it) has this id."""


class DeliveryNotFinished(ValueError):
    """Only a delivery that is over (delivered or failed) can be sent again."""

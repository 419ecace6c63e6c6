"""Where a sales-ready lead is on its way through sales."""

from __future__ import annotations

from enum import StrEnum


class LeadStatus(StrEnum):
    """The values are the ones stored in `router.leads.status`."""

    QUEUED = "queued"  # waiting for a rep who can take it
    ASSIGNED = "assigned"  # with a rep, who has not accepted it yet: the SLA clock runs
    ACCEPTED = "accepted"
    CLOSED = "closed"  # won or lost
    RETURNED = "returned"  # sent back to marketing


# The leads that count against a rep's capacity.
OPEN = frozenset({LeadStatus.ASSIGNED, LeadStatus.ACCEPTED})

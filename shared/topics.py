"""The topic catalog (DESIGN.md section 3): every topic leadflow produces or consumes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    name: str
    producer: str
    key: str
    content: str


INTERACTIONS = Topic(
    "lead.interactions", "ingest", "identity key", "validated interactions from every channel"
)
INTERACTIONS_DLQ = Topic(
    "lead.interactions.dlq",
    "any consumer",
    "original key",
    "original bytes + error + source topic/partition/offset",
)
LIFECYCLE = Topic(
    "lead.lifecycle", "scoring, router", "lead id", "stage transitions and threshold crossings"
)
HANDOFFS = Topic(
    "lead.handoffs", "router", "lead id", "assigned, reassigned, accepted, escalated, queued"
)
NURTURE = Topic("lead.nurture", "router", "lead id", "leads returned to marketing nurture")
SALES_ACTIONS = Topic("sales.actions", "router", "lead id", "rep actions as facts")

CATALOG: tuple[Topic, ...] = (
    INTERACTIONS,
    INTERACTIONS_DLQ,
    LIFECYCLE,
    HANDOFFS,
    NURTURE,
    SALES_ACTIONS,
)

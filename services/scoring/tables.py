"""The `scoring` schema: interactions, identities, leads, returns, timers, offsets, outbox."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from shared.plumbing import offsets_table, outbox_table

SCHEMA = "scoring"
metadata = MetaData(schema=SCHEMA)

interactions = Table(
    "interactions",
    metadata,
    Column("event_id", Text, primary_key=True),
    Column("lead_id", UUID(as_uuid=False), nullable=False),
    Column("event_time", DateTime(timezone=True), nullable=False),
    Column("channel", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("campaign", Text),
    Column("url", Text),
    Column("asset", Text),
    Column("network", Text),
    Column("profile", JSONB),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
Index("interactions_by_lead", interactions.c.lead_id, interactions.c.event_time)

identities = Table(
    "identities",
    metadata,
    Column("identity", Text, primary_key=True),
    Column("lead_id", UUID(as_uuid=False), nullable=False, index=True),
)

leads = Table(
    "leads",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("email", Text),
    Column("stage", Text),
    Column("score", Float, nullable=False, server_default="0"),
    Column("engagement", Float, nullable=False, server_default="0"),
    Column("fit", Float, nullable=False, server_default="0"),
    Column("grade", Text),
    Column("thresholds_met", ARRAY(Float), nullable=False, server_default="{}"),
    Column("campaigns", ARRAY(Text), nullable=False, server_default="{}"),
    Column("interaction_count", Integer, nullable=False, server_default="0"),
    Column("last_event_time", DateTime(timezone=True)),
    Column("evaluated_at", DateTime(timezone=True)),
    Column("definitions_version", Text),
    Column("reported_stages", ARRAY(Text), server_default="{}"),
    Column("hand_off_blocked_until", DateTime(timezone=True)),
    # `Replay.snapshot` under `definitions_version`: where the next interaction goes on from.
    Column("timeline_state", JSONB),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
Index("leads_by_stage_grade", leads.c.stage, leads.c.grade)
Index("leads_by_campaign", leads.c.campaigns, postgresql_using="gin")

returns = Table(
    "returns",
    metadata,
    Column("event_id", Text, primary_key=True),
    Column("lead_id", UUID(as_uuid=False), nullable=False, index=True),
    Column("returned_at", DateTime(timezone=True), nullable=False),
    Column("stage", Text, nullable=False),
    Column("resets_score", Boolean, nullable=False),
    Column("eligible_again_at", DateTime(timezone=True)),
)

decay_timers = Table(
    "decay_timers",
    metadata,
    Column("lead_id", UUID(as_uuid=False), primary_key=True),
    Column("due_at", DateTime(timezone=True), nullable=False, index=True),
)

consumer_offsets = offsets_table(metadata)
outbox = outbox_table(metadata)

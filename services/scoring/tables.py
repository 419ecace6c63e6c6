"""The `scoring` schema: interactions, identities, leads, returns, timers, offsets, outbox,
shadow runs and sales' verdicts."""

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

# Candidate definitions scored beside the active ones; `report` is frozen when the run stops
# or is promoted (the record of why it was promoted).
shadow_runs = Table(
    "shadow_runs",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("label", Text),
    Column("document", Text, nullable=False),
    Column("version", Text, nullable=False),
    Column("active_version", Text, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("stopped_at", DateTime(timezone=True)),
    Column("promoted_at", DateTime(timezone=True)),
    Column("report", JSONB),
)
# One shadow run at a time: among the runs not stopped, a second NULL is a duplicate.
Index(
    "shadow_runs_one_running",
    shadow_runs.c.stopped_at,
    unique=True,
    postgresql_where=shadow_runs.c.stopped_at.is_(None),
    postgresql_nulls_not_distinct=True,
)

# What each side decided of a lead the run evaluated.
shadow_leads = Table(
    "shadow_leads",
    metadata,
    Column("shadow_id", UUID(as_uuid=False), primary_key=True),
    Column("lead_id", UUID(as_uuid=False), primary_key=True),
    *(
        column
        for side in ("candidate", "active")
        for column in (
            Column(f"{side}_score", Float, nullable=False),
            Column(f"{side}_grade", Text, nullable=False),
            Column(f"{side}_stage", Text),
            Column(f"{side}_handed_off_at", DateTime(timezone=True)),
            Column(f"{side}_team", Text),
        )
    ),
    Column("last_evaluated_at", DateTime(timezone=True), nullable=False),
)

# Sales' latest verdict on a lead it was handed: accepted, or returned to nurture.
sales_verdicts = Table(
    "sales_verdicts",
    metadata,
    Column("lead_id", UUID(as_uuid=False), primary_key=True),
    Column("verdict", Text, nullable=False),
    Column("reason", Text),
    Column("at", DateTime(timezone=True), nullable=False),
)

consumer_offsets = offsets_table(metadata)
outbox = outbox_table(metadata)

"""The `router` schema: reps, routed leads, account owners, SLA timers, the hand-off log."""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Sequence,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from shared.plumbing import offsets_table, outbox_table

SCHEMA = "router"
metadata = MetaData(schema=SCHEMA)

reps = Table(
    "reps",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("name", Text, nullable=False),
    Column("team", Text, nullable=False),
    Column("token_hash", Text, nullable=False, unique=True),
    Column("capacity", Integer, nullable=False),
    Column("weight", Float, nullable=False, server_default="1"),
    Column("active", Boolean, nullable=False, server_default="true"),
    Column("out_of_office_until", DateTime(timezone=True)),
    Column("timezone", Text, nullable=False, server_default="UTC"),
    Column("work_start_hour", Integer, nullable=False, server_default="0"),
    Column("work_end_hour", Integer, nullable=False, server_default="24"),
    Column("work_days", ARRAY(Integer), nullable=False, server_default="{0,1,2,3,4,5,6}"),
    Column("assigned_total", Integer, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("email", Text),
    Column("chat_webhook_url", Text),
    # Leads assigned or accepted, kept by a trigger on router.leads in the same transaction.
    Column("open_leads", Integer, nullable=False, server_default="0"),
    # The rotation turn the rep last got a lead at (from `rotation_turns`): who is next.
    Column("last_turn", BigInteger),
)

# Turns of every team's rotation, in the order they were taken, across router instances.
rotation_turns = Sequence("rotation_turns", metadata=metadata)

# One row per team, locked by whoever chooses among its reps.
team_rotations = Table(
    "team_rotations",
    metadata,
    Column("team", Text, primary_key=True),
)

leads = Table(
    "leads",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("status", Text, nullable=False),  # queued, assigned, accepted, closed, returned
    Column("stage", Text),
    Column("rep_id", UUID(as_uuid=False), index=True),
    Column("team", Text),
    Column("grade", Text),
    Column("score", Float),
    Column("profile", JSONB, nullable=False, server_default="{}"),
    Column("account_domain", Text),
    Column("handed_off_at", DateTime(timezone=True)),
    Column("queued_at", DateTime(timezone=True)),
    Column("assigned_at", DateTime(timezone=True)),
    Column("accepted_at", DateTime(timezone=True)),
    Column("sla_deadline", DateTime(timezone=True)),
    Column("breaches", Integer, nullable=False, server_default="0"),
    Column("escalated_to", Text),
    Column("qualification", JSONB, nullable=False, server_default="{}"),
    Column("amount", Float),
    Column("definitions_version", Text),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # The rules that gave the most points at the hand-off: what the rep's notice says.
    Column("reasons", JSONB, nullable=False, server_default="[]"),
    # Every named score at the hand-off (score key -> value); {} without named scores.
    Column("scores", JSONB, nullable=False, server_default="{}"),
)
Index("router_leads_queue", leads.c.status, leads.c.queued_at)

account_owners = Table(
    "account_owners",
    metadata,
    Column("domain", Text, primary_key=True),
    Column("rep_id", UUID(as_uuid=False), nullable=False),
)

sla_timers = Table(
    "sla_timers",
    metadata,
    Column("lead_id", UUID(as_uuid=False), primary_key=True),
    Column("due_at", DateTime(timezone=True), nullable=False, index=True),
)

processed_events = Table(
    "processed_events",
    metadata,
    Column("event_id", Text, primary_key=True),
    Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

handoff_log = Table(
    "handoff_log",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=True),
    Column("event_id", Text, nullable=False, unique=True),
    Column("lead_id", UUID(as_uuid=False), nullable=False),
    Column("rep_id", UUID(as_uuid=False)),
    Column("team", Text),
    Column("kind", Text, nullable=False),
    Column("envelope", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

sales_actions = Table(
    "sales_actions",
    metadata,
    Column("event_id", Text, primary_key=True),
    Column("lead_id", UUID(as_uuid=False), nullable=False, index=True),
    Column("rep_id", UUID(as_uuid=False), nullable=False),
    Column("action", Text, nullable=False),
    Column("details", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

stage_history = Table(
    "stage_history",
    metadata,
    Column("event_id", Text, primary_key=True),
    Column("lead_id", UUID(as_uuid=False), nullable=False, index=True),
    Column("from_stage", Text),
    Column("to_stage", Text, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False, index=True),
    Column("grade", Text),
    Column("reason", Text, nullable=False),
    Column("campaigns", ARRAY(Text), nullable=False, server_default="{}"),
    Column("source_channel", Text),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("url", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("event_types", ARRAY(Text), nullable=False),
    Column("secret", Text, nullable=False),
    # After a rotation, deliveries are signed with both secrets for a while.
    Column("previous_secret", Text),
    Column("previous_secret_until", DateTime(timezone=True)),
    Column("status", Text, nullable=False, server_default="active"),  # active, paused
    Column("paused_reason", Text),
    Column("failing_since", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Every outbound message: a webhook delivery of an event to a subscription, or a notice
# (email, chat) to a person. Written in the transaction of the event, sent after.
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("dedupe_key", Text, nullable=False, unique=True),
    Column("event_id", Text, nullable=False),
    Column("lead_id", UUID(as_uuid=False), nullable=False),
    Column("channel", Text, nullable=False),  # webhook, email, chat
    Column(
        "subscription_id",
        UUID(as_uuid=False),
        ForeignKey("subscriptions.id", ondelete="CASCADE"),
    ),
    Column("recipient", Text, nullable=False),
    Column("purpose", Text, nullable=False),  # the event type, or assigned, reminder, ...
    Column("rep_id", UUID(as_uuid=False)),
    Column("body", Text),
    Column("status", Text, nullable=False, server_default="pending"),  # delivered, failed, skipped
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("first_tried_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("last_error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
Index(
    "router_deliveries_due",
    deliveries.c.due_at,
    postgresql_where=deliveries.c.status == "pending",
)
Index("router_deliveries_lane", deliveries.c.subscription_id, deliveries.c.lead_id, deliveries.c.id)

delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column(
        "delivery_id",
        BigInteger,
        ForeignKey("deliveries.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("number", Integer, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("status_code", Integer),
    Column("latency_ms", Float, nullable=False),
    Column("response_head", Text),
    Column("error", Text),
)

consumer_offsets = offsets_table(metadata)
outbox = outbox_table(metadata)

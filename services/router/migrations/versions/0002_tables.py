"""The router tables: reps, leads, account owners, SLA timers, hand-off log, offsets, outbox.

Frozen DDL: the tables as this revision created them when it was released (0b06801).
Later columns and tables come with later revisions; never edit this one.

Revision ID: router_0002
Revises: router_0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "router_0002"
down_revision: str | None = "router_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "router"


def upgrade() -> None:
    op.create_table(
        "reps",
        sa.Column("id", postgresql.UUID(), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("team", sa.Text(), nullable=False),
        sa.Column("token_hash", sa.Text(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False, server_default="1"),
        sa.Column("active", sa.Boolean(), nullable=False, server_default="true"),
        sa.Column("out_of_office_until", sa.DateTime(timezone=True)),
        sa.Column("timezone", sa.Text(), nullable=False, server_default="UTC"),
        sa.Column("work_start_hour", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("work_end_hour", sa.Integer(), nullable=False, server_default="24"),
        sa.Column(
            "work_days",
            postgresql.ARRAY(sa.Integer()),
            nullable=False,
            server_default="{0,1,2,3,4,5,6}",
        ),
        sa.Column("assigned_total", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_assigned_at", sa.DateTime(timezone=True)),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.UniqueConstraint("token_hash", name="reps_token_hash_key"),
        schema=SCHEMA,
    )

    op.create_table(
        "leads",
        sa.Column("id", postgresql.UUID(), primary_key=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("stage", sa.Text()),
        sa.Column("rep_id", postgresql.UUID()),
        sa.Column("team", sa.Text()),
        sa.Column("grade", sa.Text()),
        sa.Column("score", sa.Float()),
        sa.Column("profile", postgresql.JSONB(), nullable=False, server_default="{}"),
        sa.Column("account_domain", sa.Text()),
        sa.Column("handed_off_at", sa.DateTime(timezone=True)),
        sa.Column("queued_at", sa.DateTime(timezone=True)),
        sa.Column("assigned_at", sa.DateTime(timezone=True)),
        sa.Column("accepted_at", sa.DateTime(timezone=True)),
        sa.Column("sla_deadline", sa.DateTime(timezone=True)),
        sa.Column("breaches", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("escalated_to", sa.Text()),
        sa.Column("qualification", postgresql.JSONB(), nullable=False, server_default="{}"),
        sa.Column("amount", sa.Float()),
        sa.Column("definitions_version", sa.Text()),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        schema=SCHEMA,
    )
    op.create_index("ix_router_leads_rep_id", "leads", ["rep_id"], schema=SCHEMA)
    op.create_index("router_leads_queue", "leads", ["status", "queued_at"], schema=SCHEMA)

    op.create_table(
        "account_owners",
        sa.Column("domain", sa.Text(), primary_key=True),
        sa.Column("rep_id", postgresql.UUID(), nullable=False),
        schema=SCHEMA,
    )

    op.create_table(
        "sla_timers",
        sa.Column("lead_id", postgresql.UUID(), primary_key=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_index("ix_router_sla_timers_due_at", "sla_timers", ["due_at"], schema=SCHEMA)

    op.create_table(
        "processed_events",
        sa.Column("event_id", sa.Text(), primary_key=True),
        sa.Column(
            "processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        schema=SCHEMA,
    )

    op.create_table(
        "handoff_log",
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=True),  # bigserial
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("lead_id", postgresql.UUID(), nullable=False),
        sa.Column("rep_id", postgresql.UUID()),
        sa.Column("team", sa.Text()),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("envelope", postgresql.JSONB(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.UniqueConstraint("event_id", name="handoff_log_event_id_key"),
        schema=SCHEMA,
    )

    op.create_table(
        "sales_actions",
        sa.Column("event_id", sa.Text(), primary_key=True),
        sa.Column("lead_id", postgresql.UUID(), nullable=False),
        sa.Column("rep_id", postgresql.UUID(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("details", postgresql.JSONB(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        schema=SCHEMA,
    )
    op.create_index("ix_router_sales_actions_lead_id", "sales_actions", ["lead_id"], schema=SCHEMA)

    op.create_table(
        "consumer_offsets",
        sa.Column("consumer_group", sa.Text(), primary_key=True),
        sa.Column("topic", sa.Text(), primary_key=True),
        sa.Column("partition", sa.Integer(), primary_key=True),
        sa.Column("next_offset", sa.BigInteger(), nullable=False),
        sa.Column("log_epoch", sa.Text()),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        schema=SCHEMA,
    )

    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),  # bigserial
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("key", sa.LargeBinary()),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("event_id", name="outbox_event_id_key"),
        schema=SCHEMA,
    )
    op.create_index(
        "outbox_pending",
        "outbox",
        ["id"],
        schema=SCHEMA,
        postgresql_where=sa.text("sent_at IS NULL"),
    )


def downgrade() -> None:
    for table in (
        "outbox",
        "consumer_offsets",
        "sales_actions",
        "handoff_log",
        "processed_events",
        "sla_timers",
        "account_owners",
        "leads",
        "reps",
    ):
        op.drop_table(table, schema=SCHEMA)

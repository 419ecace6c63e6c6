"""The scoring tables: interactions, identities, leads, decay timers, offsets, outbox.

Frozen DDL: the tables as this revision created them when it was released (0eb1c41).
Later columns and tables come with later revisions; never edit this one.

Revision ID: scoring_0002
Revises: scoring_0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "scoring_0002"
down_revision: str | None = "scoring_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "scoring"


def upgrade() -> None:
    op.create_table(
        "interactions",
        sa.Column("event_id", sa.Text(), primary_key=True),
        sa.Column("lead_id", postgresql.UUID(), nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("campaign", sa.Text()),
        sa.Column("url", sa.Text()),
        sa.Column("asset", sa.Text()),
        sa.Column("network", sa.Text()),
        sa.Column("profile", postgresql.JSONB()),
        sa.Column(
            "recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "interactions_by_lead", "interactions", ["lead_id", "event_time"], schema=SCHEMA
    )

    op.create_table(
        "identities",
        sa.Column("identity", sa.Text(), primary_key=True),
        sa.Column("lead_id", postgresql.UUID(), nullable=False),
        schema=SCHEMA,
    )
    op.create_index("ix_scoring_identities_lead_id", "identities", ["lead_id"], schema=SCHEMA)

    op.create_table(
        "leads",
        sa.Column("id", postgresql.UUID(), primary_key=True),
        sa.Column("email", sa.Text()),
        sa.Column("stage", sa.Text()),
        sa.Column("score", sa.Float(), nullable=False, server_default="0"),
        sa.Column("engagement", sa.Float(), nullable=False, server_default="0"),
        sa.Column("fit", sa.Float(), nullable=False, server_default="0"),
        sa.Column("grade", sa.Text()),
        sa.Column(
            "thresholds_met", postgresql.ARRAY(sa.Float()), nullable=False, server_default="{}"
        ),
        sa.Column("campaigns", postgresql.ARRAY(sa.Text()), nullable=False, server_default="{}"),
        sa.Column("interaction_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_event_time", sa.DateTime(timezone=True)),
        sa.Column("evaluated_at", sa.DateTime(timezone=True)),
        sa.Column("definitions_version", sa.Text()),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        schema=SCHEMA,
    )
    op.create_index("leads_by_stage_grade", "leads", ["stage", "grade"], schema=SCHEMA)
    op.create_index(
        "leads_by_campaign", "leads", ["campaigns"], schema=SCHEMA, postgresql_using="gin"
    )

    op.create_table(
        "decay_timers",
        sa.Column("lead_id", postgresql.UUID(), primary_key=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_index("ix_scoring_decay_timers_due_at", "decay_timers", ["due_at"], schema=SCHEMA)

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
        "decay_timers",
        "leads",
        "identities",
        "interactions",
    ):
        op.drop_table(table, schema=SCHEMA)

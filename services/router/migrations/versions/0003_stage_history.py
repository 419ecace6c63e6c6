"""Every stage change of every lead, the projection the funnel reports read.

Frozen DDL: the table as this revision created it when it was released (ca4d0fb). Its
source_channel column comes with router_0004; never edit this one.

Revision ID: router_0003
Revises: router_0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "router_0003"
down_revision: str | None = "router_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "router"


def upgrade() -> None:
    op.create_table(
        "stage_history",
        sa.Column("event_id", sa.Text(), primary_key=True),
        sa.Column("lead_id", postgresql.UUID(), nullable=False),
        sa.Column("from_stage", sa.Text()),
        sa.Column("to_stage", sa.Text(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("grade", sa.Text()),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("campaigns", postgresql.ARRAY(sa.Text()), nullable=False, server_default="{}"),
        schema=SCHEMA,
    )
    op.create_index("ix_router_stage_history_lead_id", "stage_history", ["lead_id"], schema=SCHEMA)
    op.create_index(
        "ix_router_stage_history_occurred_at", "stage_history", ["occurred_at"], schema=SCHEMA
    )


def downgrade() -> None:
    op.drop_table("stage_history", schema=SCHEMA)

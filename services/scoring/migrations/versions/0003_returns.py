"""Leads returned by sales: the returns table, and what was reported of each lead.

Frozen DDL: as this revision changed the schema when it was released (8fc0e81).

Revision ID: scoring_0003
Revises: scoring_0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "scoring_0003"
down_revision: str | None = "scoring_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "scoring"


def upgrade() -> None:
    op.create_table(
        "returns",
        sa.Column("event_id", sa.Text(), primary_key=True),
        sa.Column("lead_id", postgresql.UUID(), nullable=False),
        sa.Column("returned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stage", sa.Text(), nullable=False),
        sa.Column("resets_score", sa.Boolean(), nullable=False),
        sa.Column("eligible_again_at", sa.DateTime(timezone=True)),
        schema=SCHEMA,
    )
    op.create_index("ix_scoring_returns_lead_id", "returns", ["lead_id"], schema=SCHEMA)
    op.add_column(
        "leads",
        sa.Column("stages_reported", sa.Integer(), nullable=False, server_default="0"),
        schema=SCHEMA,
    )
    op.add_column(
        "leads", sa.Column("hand_off_blocked_until", sa.DateTime(timezone=True)), schema=SCHEMA
    )


def downgrade() -> None:
    op.drop_column("leads", "hand_off_blocked_until", schema=SCHEMA)
    op.drop_column("leads", "stages_reported", schema=SCHEMA)
    op.drop_table("returns", schema=SCHEMA)

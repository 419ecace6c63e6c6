"""Leads returned by sales: the returns table, and what was reported of each lead.

Revision ID: scoring_0003
Revises: scoring_0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from services.scoring.tables import returns

revision: str = "scoring_0003"
down_revision: str | None = "scoring_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    returns.create(op.get_bind())
    op.add_column(
        "leads",
        sa.Column("stages_reported", sa.Integer, nullable=False, server_default="0"),
        schema="scoring",
    )
    op.add_column(
        "leads",
        sa.Column("hand_off_blocked_until", sa.DateTime(timezone=True)),
        schema="scoring",
    )


def downgrade() -> None:
    op.drop_column("leads", "hand_off_blocked_until", schema="scoring")
    op.drop_column("leads", "stages_reported", schema="scoring")
    returns.drop(op.get_bind())

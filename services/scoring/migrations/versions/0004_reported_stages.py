"""Stage entries reported by identity (cycle and stage), not by count.

Leads stored before this revision get NULL: scoring then counts whatever their history
showed before their next interaction as reported, so nothing is reported twice.

Revision ID: scoring_0004
Revises: scoring_0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "scoring_0004"
down_revision: str | None = "scoring_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("leads", sa.Column("reported_stages", sa.ARRAY(sa.Text)), schema="scoring")
    op.alter_column("leads", "reported_stages", server_default="{}", schema="scoring")
    op.drop_column("leads", "stages_reported", schema="scoring")


def downgrade() -> None:
    op.add_column(
        "leads",
        sa.Column("stages_reported", sa.Integer, nullable=False, server_default="0"),
        schema="scoring",
    )
    op.drop_column("leads", "reported_stages", schema="scoring")

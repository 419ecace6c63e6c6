"""The channel a lead first came from, on each of its stage changes (the funnel by source).

tables.py has described this column since 0f85f61, which added no revision: databases
migrated before it have router_0003 without the column (and the router cannot record a
stage change there), databases migrated after it have router_0003 with it. Both end here
with the column; stage changes recorded before it have none (NULL, reported as unknown).

Revision ID: router_0004
Revises: router_0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "router_0004"
down_revision: str | None = "router_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "stage_history", sa.Column("source_channel", sa.Text()), schema="router", if_not_exists=True
    )


def downgrade() -> None:
    op.drop_column("stage_history", "source_channel", schema="router")

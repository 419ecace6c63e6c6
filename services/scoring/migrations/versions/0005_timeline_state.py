"""Each lead keeps its timeline's state, so that a new interaction is scored in O(1).

Leads stored before this revision get NULL: their next interaction replays their history
once and saves the state.

Revision ID: scoring_0005
Revises: scoring_0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "scoring_0005"
down_revision: str | None = "scoring_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("leads", sa.Column("timeline_state", postgresql.JSONB), schema="scoring")


def downgrade() -> None:
    op.drop_column("leads", "timeline_state", schema="scoring")

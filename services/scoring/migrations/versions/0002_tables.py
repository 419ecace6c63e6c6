"""The scoring tables: interactions, identities, leads, decay timers, offsets, outbox.

Revision ID: scoring_0002
Revises: scoring_0001
"""

from collections.abc import Sequence

from alembic import op

from services.scoring.tables import metadata, returns

revision: str = "scoring_0002"
down_revision: str | None = "scoring_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The tables as they were at this revision: later columns and tables come with 0003.
    metadata.create_all(op.get_bind(), tables=[t for t in metadata.sorted_tables if t is not returns])
    op.drop_column("leads", "hand_off_blocked_until", schema="scoring")
    op.drop_column("leads", "reported_stages", schema="scoring")


def downgrade() -> None:
    metadata.drop_all(op.get_bind())

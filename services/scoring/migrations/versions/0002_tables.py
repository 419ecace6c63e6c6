"""The scoring tables: interactions, identities, leads, decay timers, offsets, outbox.

Revision ID: scoring_0002
Revises: scoring_0001
"""

from collections.abc import Sequence

from alembic import op

from services.scoring.tables import metadata

revision: str = "scoring_0002"
down_revision: str | None = "scoring_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    metadata.create_all(op.get_bind())


def downgrade() -> None:
    metadata.drop_all(op.get_bind())

"""The scoring schema.

The shared Alembic environment creates it too, before any revision runs, because Alembic
keeps this service's version table in it; this revision is the first step of the history
all the same, so that the history alone says where every part of the schema comes from.
Deployments have recorded this revision since the first release: its id stays.

Revision ID: scoring_0001
Revises:
"""

from collections.abc import Sequence

from alembic import op

revision: str = "scoring_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute('CREATE SCHEMA IF NOT EXISTS "scoring"')


def downgrade() -> None:
    """The schema stays: it holds Alembic's version table."""

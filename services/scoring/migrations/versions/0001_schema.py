"""The scoring schema: created by the shared Alembic environment before this revision runs.

Revision ID: scoring_0001
Revises:
"""

from collections.abc import Sequence

revision: str = "scoring_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Tables of this schema arrive with the issue that builds the service."""


def downgrade() -> None:
    """Nothing to undo: the schema itself stays."""

"""Named scores: each routed lead keeps every named score scoring handed it off with (score
key -> value), for the rep's queue. Leads routed before have none.

Revision ID: router_0007
Revises: router_0006
"""

from collections.abc import Sequence

from alembic import op

revision: str = "router_0007"
down_revision: str | None = "router_0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE router.leads ADD COLUMN scores jsonb DEFAULT '{}' NOT NULL")


def downgrade() -> None:
    op.execute("ALTER TABLE router.leads DROP COLUMN scores")

"""Every stage change of every lead, the projection the funnel reports read.

Revision ID: router_0003
Revises: router_0002
"""

from collections.abc import Sequence

from alembic import op

from services.router.tables import stage_history

revision: str = "router_0003"
down_revision: str | None = "router_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    stage_history.create(op.get_bind())


def downgrade() -> None:
    stage_history.drop(op.get_bind())

"""The router tables: reps, leads, account owners, SLA timers, hand-off log, offsets, outbox.

Revision ID: router_0002
Revises: router_0001
"""

from collections.abc import Sequence

from alembic import op

from services.router.tables import metadata, stage_history

revision: str = "router_0002"
down_revision: str | None = "router_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The tables as they were at this revision; stage_history comes with 0003.
    metadata.create_all(
        op.get_bind(), tables=[t for t in metadata.sorted_tables if t is not stage_history]
    )


def downgrade() -> None:
    metadata.drop_all(op.get_bind())

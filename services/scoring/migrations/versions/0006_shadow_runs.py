"""Shadow runs: candidate definitions scored beside the active ones on live traffic, what
each side decided per lead, and sales' verdicts to judge them by.

Revision ID: scoring_0006
Revises: scoring_0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "scoring_0006"
down_revision: str | None = "scoring_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)
UUID = postgresql.UUID(as_uuid=False)


def _side(side: str) -> list[sa.Column[object]]:
    return [
        sa.Column(f"{side}_score", sa.Float, nullable=False),
        sa.Column(f"{side}_grade", sa.Text, nullable=False),
        sa.Column(f"{side}_stage", sa.Text),
        sa.Column(f"{side}_handed_off_at", TIMESTAMP),
        sa.Column(f"{side}_team", sa.Text),
    ]


def upgrade() -> None:
    op.create_table(
        "shadow_runs",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("label", sa.Text),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("version", sa.Text, nullable=False),
        sa.Column("active_version", sa.Text, nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("stopped_at", TIMESTAMP),
        sa.Column("promoted_at", TIMESTAMP),
        sa.Column("report", postgresql.JSONB),
        schema="scoring",
    )
    op.create_index(
        "shadow_runs_one_running",
        "shadow_runs",
        ["stopped_at"],
        unique=True,
        postgresql_where=sa.text("stopped_at IS NULL"),
        postgresql_nulls_not_distinct=True,
        schema="scoring",
    )
    op.create_table(
        "shadow_leads",
        sa.Column("shadow_id", UUID, primary_key=True),
        sa.Column("lead_id", UUID, primary_key=True),
        *_side("candidate"),
        *_side("active"),
        sa.Column("last_evaluated_at", TIMESTAMP, nullable=False),
        schema="scoring",
    )
    op.create_table(
        "sales_verdicts",
        sa.Column("lead_id", UUID, primary_key=True),
        sa.Column("verdict", sa.Text, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("at", TIMESTAMP, nullable=False),
        schema="scoring",
    )


def downgrade() -> None:
    op.drop_table("sales_verdicts", schema="scoring")
    op.drop_table("shadow_leads", schema="scoring")
    op.drop_table("shadow_runs", schema="scoring")

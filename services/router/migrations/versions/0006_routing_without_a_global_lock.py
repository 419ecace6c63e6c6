"""Routing without a global lock: each rep's open leads as a counter kept by a trigger in the
transaction that moves a lead, a row per team that whoever chooses among its reps locks, and
rotation turns from a sequence instead of the clock.

The counters and turns are filled from the rows already there: a rep's open leads are their
assigned and accepted leads; the reps' turns follow the order they last got a lead in.

Revision ID: router_0006
Revises: router_0005
"""

from collections.abc import Sequence

from alembic import op

revision: str = "router_0006"
down_revision: str | None = "router_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


UPGRADE = (
    "ALTER TABLE router.reps ADD COLUMN open_leads integer DEFAULT 0 NOT NULL,"
    " ADD COLUMN last_turn bigint",
    "CREATE SEQUENCE router.rotation_turns",
    """
        CREATE TABLE router.team_rotations (
            team text NOT NULL,
            CONSTRAINT team_rotations_pkey PRIMARY KEY (team)
        )""",
    """
        UPDATE router.reps r SET open_leads = open.leads
        FROM (SELECT rep_id, count(*) AS leads FROM router.leads
              WHERE status IN ('assigned', 'accepted') AND rep_id IS NOT NULL
              GROUP BY rep_id) open
        WHERE r.id = open.rep_id""",
    """
        UPDATE router.reps r SET last_turn = turn.number
        FROM (SELECT id, row_number() OVER (ORDER BY last_assigned_at, id) AS number
              FROM router.reps WHERE last_assigned_at IS NOT NULL) turn
        WHERE r.id = turn.id""",
    """
        SELECT setval('router.rotation_turns', count(*) + 1, false)
        FROM router.reps WHERE last_assigned_at IS NOT NULL""",
    "INSERT INTO router.team_rotations (team) SELECT DISTINCT team FROM router.reps",
    "ALTER TABLE router.reps DROP COLUMN last_assigned_at",
    # A lead counts against its rep while assigned or accepted.
    """
        CREATE FUNCTION router.count_open_leads() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            counted_before uuid;
            counted_after uuid;
        BEGIN
            IF TG_OP <> 'INSERT' AND OLD.status IN ('assigned', 'accepted') THEN
                counted_before := OLD.rep_id;
            END IF;
            IF TG_OP <> 'DELETE' AND NEW.status IN ('assigned', 'accepted') THEN
                counted_after := NEW.rep_id;
            END IF;
            IF counted_before IS DISTINCT FROM counted_after THEN
                UPDATE router.reps SET open_leads = open_leads - 1 WHERE id = counted_before;
                UPDATE router.reps SET open_leads = open_leads + 1 WHERE id = counted_after;
            END IF;
            RETURN NULL;
        END
        $$""",
    """
        CREATE TRIGGER leads_count_open_leads
        AFTER INSERT OR DELETE OR UPDATE OF status, rep_id ON router.leads
        FOR EACH ROW EXECUTE FUNCTION router.count_open_leads()""",
)

DOWNGRADE = (
    "DROP TRIGGER leads_count_open_leads ON router.leads",
    "DROP FUNCTION router.count_open_leads()",
    "ALTER TABLE router.reps ADD COLUMN last_assigned_at timestamp with time zone",
    "DROP TABLE router.team_rotations",
    "DROP SEQUENCE router.rotation_turns",
    "ALTER TABLE router.reps DROP COLUMN open_leads, DROP COLUMN last_turn",
)


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)

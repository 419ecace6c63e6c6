"""Notifications and outbound webhooks: reps' email and chat addresses, the reasons a lead
was handed off, subscriptions, and every outbound message with its attempts.

Revision ID: router_0005
Revises: router_0004
"""

from collections.abc import Sequence

from alembic import op

revision: str = "router_0005"
down_revision: str | None = "router_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


UPGRADE = (
    "ALTER TABLE router.reps ADD COLUMN email text, ADD COLUMN chat_webhook_url text",
    "ALTER TABLE router.leads ADD COLUMN reasons jsonb DEFAULT '[]' NOT NULL",
    """
        CREATE TABLE router.subscriptions (
            id uuid NOT NULL,
            url text NOT NULL,
            description text DEFAULT '' NOT NULL,
            event_types text[] NOT NULL,
            secret text NOT NULL,
            previous_secret text,
            previous_secret_until timestamp with time zone,
            status text DEFAULT 'active' NOT NULL,
            paused_reason text,
            failing_since timestamp with time zone,
            created_at timestamp with time zone DEFAULT now() NOT NULL,
            CONSTRAINT subscriptions_pkey PRIMARY KEY (id)
        )""",
    """
        CREATE TABLE router.deliveries (
            id bigserial NOT NULL,
            dedupe_key text NOT NULL,
            event_id text NOT NULL,
            lead_id uuid NOT NULL,
            channel text NOT NULL,
            subscription_id uuid,
            recipient text NOT NULL,
            purpose text NOT NULL,
            rep_id uuid,
            body text,
            status text DEFAULT 'pending' NOT NULL,
            due_at timestamp with time zone NOT NULL,
            attempts integer DEFAULT 0 NOT NULL,
            first_tried_at timestamp with time zone,
            finished_at timestamp with time zone,
            last_error text,
            created_at timestamp with time zone DEFAULT now() NOT NULL,
            CONSTRAINT deliveries_pkey PRIMARY KEY (id),
            CONSTRAINT deliveries_dedupe_key_key UNIQUE (dedupe_key),
            CONSTRAINT deliveries_subscription_id_fkey FOREIGN KEY (subscription_id)
                REFERENCES router.subscriptions (id) ON DELETE CASCADE
        )""",
    "CREATE INDEX router_deliveries_due ON router.deliveries (due_at) WHERE status = 'pending'",
    "CREATE INDEX router_deliveries_lane ON router.deliveries (subscription_id, lead_id, id)",
    """
        CREATE TABLE router.delivery_attempts (
            delivery_id bigint NOT NULL,
            number integer NOT NULL,
            at timestamp with time zone NOT NULL,
            status_code integer,
            latency_ms double precision NOT NULL,
            response_head text,
            error text,
            CONSTRAINT delivery_attempts_pkey PRIMARY KEY (delivery_id, number),
            CONSTRAINT delivery_attempts_delivery_id_fkey FOREIGN KEY (delivery_id)
                REFERENCES router.deliveries (id) ON DELETE CASCADE
        )""",
)

DOWNGRADE = (
    "DROP TABLE router.delivery_attempts",
    "DROP TABLE router.deliveries",
    "DROP TABLE router.subscriptions",
    "ALTER TABLE router.leads DROP COLUMN reasons",
    "ALTER TABLE router.reps DROP COLUMN email, DROP COLUMN chat_webhook_url",
)


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)

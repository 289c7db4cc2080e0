"""notifications: an outbox of events about children (`notification`, written in the
transaction of the write or read that caused them), each Subscription's delivery state
(`subscription_state`) and its numbered events (`subscription_event`), kept for `$events`
(`app.storage.outbox`, `app.storage.subscriptions`, `app.notify`); each child's responsible
Organizations, one row each (`child_authority`, filled from the index rows that make them
responsible); the index of a child's records by type gains the author

Revision ID: 0016
Revises: 0015
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MICROS = "microseconds since epoch, UTC"
KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # A child's records by author too: the distinct authors of a child's Flags are read by
    # skipping through it (`app.storage.outbox`), however many Flags the child has.
    op.create_index(
        "ix_resource_resource_type_patient_id_author_org",
        "resource",
        ["resource_type", "patient_id", "author_org"],
    )
    op.drop_index("ix_resource_resource_type_patient_id", table_name="resource")
    # Whether an Organization is a local authority (has such a client), asked per notification.
    op.create_index(
        "ix_oauth_client_organisation_role", "oauth_client", ["organisation", "role"]
    )
    op.create_table(
        "notification",
        sa.Column("seq", KEY, autoincrement=True, nullable=False),
        sa.Column("topic", sa.String(length=64), nullable=False, comment="the event's topic code"),
        sa.Column("recipient_org", sa.String(length=64), nullable=False, comment="the Organization to tell"),
        sa.Column("occurred_at", sa.BigInteger(), nullable=False, comment="when it happened, " + MICROS),
        sa.Column("detail", sa.Text(), nullable=False, comment="JSON: child, cause, resources involved"),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_notification")),
    )
    op.create_table(
        "child_authority",
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("organisation", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("patient_id", "organisation", name=op.f("pk_child_authority")),
    )
    op.execute(
        "INSERT INTO child_authority (patient_id, organisation) SELECT DISTINCT g.patient_id, "
        "x.target_id FROM resource g JOIN idx_reference x ON x.resource_pk = g.pk WHERE "
        "x.param = '_responsible' AND x.target_type = 'Organization' AND NOT g.deleted AND "
        "g.patient_id IS NOT NULL AND g.resource_type IN ('Flag', 'Patient')"
    )
    op.create_table(
        "subscription_state",
        sa.Column("resource_pk", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("logical_id", sa.String(length=64), nullable=False),
        sa.Column("owner_org", sa.String(length=64), nullable=False, comment="the Organization it serves"),
        sa.Column("topic", sa.String(length=64), nullable=False),
        sa.Column("endpoint", sa.Text(), nullable=True, comment="rest-hook URL; null: held for $events"),
        sa.Column("channel", sa.Text(), nullable=False, comment="JSON: content, headers, heartbeat, ..."),
        sa.Column("status", sa.String(length=16), nullable=False, comment="requested, active, error, off"),
        sa.Column("events_total", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("delivered_through", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger(), server_default="0", nullable=False, comment=MICROS),
        sa.Column("last_sent_at", sa.BigInteger(), nullable=True, comment=MICROS),
        sa.Column("started_at", sa.BigInteger(), nullable=False, comment="events from then on, " + MICROS),
        sa.Column("error", sa.Text(), nullable=True, comment="why the last delivery failed"),
        sa.PrimaryKeyConstraint("resource_pk", name=op.f("pk_subscription_state")),
    )
    op.create_index(
        "ix_subscription_state_owner_org_topic", "subscription_state", ["owner_org", "topic"]
    )
    op.create_table(
        "subscription_event",
        sa.Column("subscription_pk", sa.BigInteger(), nullable=False),
        sa.Column("event_number", sa.BigInteger(), nullable=False),
        sa.Column("occurred_at", sa.BigInteger(), nullable=False, comment=MICROS),
        sa.Column("detail", sa.Text(), nullable=False, comment="JSON, as in notification"),
        sa.PrimaryKeyConstraint("subscription_pk", "event_number", name=op.f("pk_subscription_event")),
    )
    op.create_index("ix_subscription_event_occurred_at", "subscription_event", ["occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_subscription_event_occurred_at", table_name="subscription_event")
    op.drop_table("subscription_event")
    op.drop_index("ix_subscription_state_owner_org_topic", table_name="subscription_state")
    op.drop_table("subscription_state")
    op.drop_table("child_authority")
    op.drop_table("notification")
    op.drop_index("ix_oauth_client_organisation_role", table_name="oauth_client")
    op.create_index("ix_resource_resource_type_patient_id", "resource", ["resource_type", "patient_id"])
    op.drop_index("ix_resource_resource_type_patient_id_author_org", table_name="resource")

"""Orders remember what the API brought (enriched_at), keep a timeline of their changes
(order_events), and orders that cannot be stored are kept aside (order_quarantine).

The timeline is written by the upsert's own statements and by the helpdesk's update, not by a
trigger: see ``keybuzz.orders.upsert``.

Revision ID: 0005_events_quarantine
Revises: 0004_one_sla_rule_uuid7_ids
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005_events_quarantine"
down_revision: str | None = "0004_one_sla_rule_uuid7_ids"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "orders",
        sa.Column(
            "enriched_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="When an API record first brought the order's details (null: report data only).",
        ),
    )
    op.create_table(
        "order_events",
        sa.Column("id", sa.Uuid(), server_default=sa.text("keybuzz_uuid7()"), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column(
            "occurred_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("clock_timestamp()"),
            nullable=False,
        ),
        sa.Column(
            "field",
            sa.Enum(
                "orderStatus",
                "deliveryStatus",
                "trackingCode",
                "savStatus",
                name="order_event_field",
            ),
            nullable=False,
        ),
        sa.Column("from_value", sa.Text(), nullable=True),
        sa.Column("to_value", sa.Text(), nullable=True),
        sa.Column(
            "source",
            sa.Enum("backfill", "sync", "refresh", "agent", name="order_event_source"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_order_events_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_order_events_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_events")),
    )
    op.create_index(
        "ix_order_events_order_occurred", "order_events", ["order_id", "occurred_at", "id"]
    )
    op.create_table(
        "order_quarantine",
        sa.Column("id", sa.Uuid(), server_default=sa.text("keybuzz_uuid7()"), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("marketplace", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("external_order_id", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("backfill_job_id", sa.Uuid(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("clock_timestamp()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["backfill_job_id"],
            ["backfill_jobs.id"],
            name=op.f("fk_order_quarantine_backfill_job_id_backfill_jobs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_order_quarantine_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_quarantine")),
    )
    op.create_index(
        "ix_order_quarantine_tenant_created",
        "order_quarantine",
        ["tenant_id", sa.literal_column("created_at DESC"), sa.literal_column("id DESC")],
    )
    op.create_index("ix_order_quarantine_backfill_job_id", "order_quarantine", ["backfill_job_id"])


def downgrade() -> None:
    op.drop_index("ix_order_quarantine_backfill_job_id", table_name="order_quarantine")
    op.drop_index("ix_order_quarantine_tenant_created", table_name="order_quarantine")
    op.drop_table("order_quarantine")
    op.drop_index("ix_order_events_order_occurred", table_name="order_events")
    op.drop_table("order_events")
    for enum_type in ("order_event_field", "order_event_source"):
        op.execute(f"DROP TYPE IF EXISTS {enum_type}")
    op.drop_column("orders", "enriched_at")

"""Orders foundation: tenants, API keys, orders and items, connections, backfill jobs.

Revision ID: 0001_foundation
Revises:
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001_foundation"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# A time-ordered UUID (version 7): new rows land at the right edge of the primary-key index.
CREATE_UUID7 = """
CREATE OR REPLACE FUNCTION keybuzz_uuid7() RETURNS uuid AS $$
    SELECT encode(
        set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
            PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint)
                FROM 3)
            FROM 1 FOR 6), 52, 1), 53, 1),
        'hex')::uuid
$$ LANGUAGE sql VOLATILE PARALLEL SAFE
"""


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute(CREATE_UUID7)
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("id ~ '^[a-z0-9][a-z0-9_-]{1,63}$'", name=op.f("ck_tenants_id_format")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_api_keys_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_index(op.f("ix_api_keys_tenant_id"), "api_keys", ["tenant_id"], unique=False)
    op.create_table(
        "backfill_jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("marketplace", sa.String(length=32), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", name="backfill_status"
            ),
            nullable=False,
        ),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("orders_fetched", sa.Integer(), nullable=False),
        sa.Column("checkpoint", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("queue_job_id", sa.BigInteger(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_backfill_jobs_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backfill_jobs")),
    )
    op.create_index(
        "ix_backfill_jobs_tenant_created",
        "backfill_jobs",
        ["tenant_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "marketplace_connections",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("marketplace", sa.String(length=32), nullable=False),
        sa.Column("region", sa.String(length=8), nullable=True),
        sa.Column("selling_partner_id", sa.String(length=64), nullable=True),
        sa.Column("marketplace_ids", postgresql.ARRAY(sa.String(length=32)), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "PENDING",
                "CONNECTED",
                "NEEDS_RECONNECT",
                "ERROR",
                "DISCONNECTED",
                name="connection_status",
            ),
            nullable=False,
        ),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("connected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_sync_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_marketplace_connections_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_marketplace_connections")),
        sa.UniqueConstraint(
            "tenant_id",
            "marketplace",
            name=op.f("uq_marketplace_connections_tenant_id_marketplace"),
        ),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.Uuid(), server_default=sa.text("keybuzz_uuid7()"), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("marketplace", sa.String(length=32), nullable=False),
        sa.Column("marketplace_id", sa.String(length=32), nullable=True),
        sa.Column("external_order_id", sa.String(length=64), nullable=False),
        sa.Column("order_ref", sa.String(length=64), nullable=False),
        sa.Column("customer_name", sa.Text(), nullable=True),
        sa.Column("customer_email", sa.Text(), nullable=True),
        sa.Column("order_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("total_amount", sa.Numeric(), nullable=True),
        sa.Column(
            "order_status",
            sa.Enum(
                "PENDING",
                "CONFIRMED",
                "SHIPPED",
                "DELIVERED",
                "CANCELLED",
                "RETURNED",
                name="order_status",
            ),
            nullable=False,
        ),
        sa.Column(
            "delivery_status",
            sa.Enum(
                "PREPARING",
                "SHIPPED",
                "IN_TRANSIT",
                "OUT_FOR_DELIVERY",
                "DELIVERED",
                "DELAYED",
                "LOST",
                name="delivery_status",
            ),
            nullable=True,
        ),
        sa.Column(
            "sav_status",
            sa.Enum("NONE", "OPEN", "IN_PROGRESS", "RESOLVED", name="sav_status"),
            server_default="NONE",
            nullable=False,
        ),
        sa.Column(
            "sla_status",
            sa.Enum("OK", "AT_RISK", "BREACHED", name="sla_status"),
            server_default="OK",
            nullable=False,
        ),
        sa.Column("carrier", sa.Text(), nullable=True),
        sa.Column("tracking_code", sa.Text(), nullable=True),
        sa.Column("shipping_address", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("fulfillment_channel", sa.String(length=16), nullable=True),
        sa.Column("latest_ship_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("latest_delivery_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("external_updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("shipped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "search_text",
            sa.Text(),
            sa.Computed(
                "lower(external_order_id || ' ' || order_ref || ' ' || coalesce(customer_name, '') || ' ' || coalesce(customer_email, ''))",
                persisted=True,
            ),
            nullable=False,
        ),
        sa.Column(
            "items_digest",
            sa.String(length=32),
            nullable=True,
            comment="Fingerprint of the last item list a marketplace gave.",
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "total_amount IS NULL OR total_amount >= 0", name=op.f("ck_orders_total_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_orders_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint(
            "tenant_id",
            "marketplace",
            "external_order_id",
            name=op.f("uq_orders_tenant_id_marketplace_external_order_id"),
        ),
    )
    op.create_index(
        "ix_orders_search_text_trgm",
        "orders",
        ["search_text"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"search_text": "gin_trgm_ops"},
    )
    op.create_index(
        "ix_orders_tenant_delivery_date",
        "orders",
        ["tenant_id", "delivery_status", sa.literal_column("order_date DESC")],
        unique=False,
    )
    op.create_index(
        "ix_orders_tenant_marketplace_date",
        "orders",
        [
            "tenant_id",
            "marketplace",
            sa.literal_column("order_date DESC"),
            sa.literal_column("id DESC"),
        ],
        unique=False,
    )
    op.create_index(
        "ix_orders_tenant_order_date",
        "orders",
        ["tenant_id", sa.literal_column("order_date DESC"), sa.literal_column("id DESC")],
        unique=False,
    )
    op.create_index(
        "ix_orders_tenant_sav_date",
        "orders",
        ["tenant_id", "sav_status", sa.literal_column("order_date DESC")],
        unique=False,
        postgresql_where=sa.text("sav_status <> 'NONE'"),
    )
    op.create_index(
        "ix_orders_tenant_ship_by_open",
        "orders",
        ["tenant_id", "latest_ship_date"],
        unique=False,
        postgresql_where=sa.text("order_status IN ('PENDING', 'CONFIRMED')"),
    )
    op.create_index(
        "ix_orders_tenant_status_date",
        "orders",
        [
            "tenant_id",
            "order_status",
            sa.literal_column("order_date DESC"),
            sa.literal_column("id DESC"),
        ],
        unique=False,
    )
    op.create_index(
        "ix_orders_tenant_updated", "orders", ["tenant_id", "updated_at", "id"], unique=False
    )
    op.create_table(
        "order_items",
        sa.Column("id", sa.Uuid(), server_default=sa.text("keybuzz_uuid7()"), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("external_item_id", sa.String(length=64), nullable=False),
        sa.Column("sku", sa.Text(), nullable=True),
        sa.Column("asin", sa.String(length=20), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price", sa.Numeric(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("quantity >= 0", name=op.f("ck_order_items_quantity_not_negative")),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_order_items_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_order_items_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_items")),
        sa.UniqueConstraint(
            "order_id", "external_item_id", name=op.f("uq_order_items_order_id_external_item_id")
        ),
    )
    op.create_index(
        "ix_order_items_tenant_sku",
        "order_items",
        ["tenant_id", sa.literal_column("lower(sku) text_pattern_ops")],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_order_items_tenant_sku", table_name="order_items")
    op.drop_table("order_items")
    op.drop_index("ix_orders_tenant_updated", table_name="orders")
    op.drop_index("ix_orders_tenant_status_date", table_name="orders")
    op.drop_index(
        "ix_orders_tenant_ship_by_open",
        table_name="orders",
        postgresql_where=sa.text("order_status IN ('PENDING', 'CONFIRMED')"),
    )
    op.drop_index(
        "ix_orders_tenant_sav_date",
        table_name="orders",
        postgresql_where=sa.text("sav_status <> 'NONE'"),
    )
    op.drop_index("ix_orders_tenant_order_date", table_name="orders")
    op.drop_index("ix_orders_tenant_marketplace_date", table_name="orders")
    op.drop_index("ix_orders_tenant_delivery_date", table_name="orders")
    op.drop_index(
        "ix_orders_search_text_trgm",
        table_name="orders",
        postgresql_using="gin",
        postgresql_ops={"search_text": "gin_trgm_ops"},
    )
    op.drop_table("orders")
    op.drop_table("marketplace_connections")
    op.drop_index("ix_backfill_jobs_tenant_created", table_name="backfill_jobs")
    op.drop_table("backfill_jobs")
    op.drop_index(op.f("ix_api_keys_tenant_id"), table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_table("tenants")
    for enum_type in (
        "order_status",
        "delivery_status",
        "sav_status",
        "sla_status",
        "connection_status",
        "backfill_status",
    ):
        op.execute(f"DROP TYPE IF EXISTS {enum_type}")
    op.execute("DROP FUNCTION IF EXISTS keybuzz_uuid7()")

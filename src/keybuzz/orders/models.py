from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Computed,
    ForeignKey,
    Index,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from keybuzz.db import UUID7_DEFAULT, Base, TimestampMixin, pg_enum
from keybuzz.orders.records import DeliveryStatus, OrderStatus, SavStatus

# Lower-cased text an agent may search for: ids, references, buyer name and email.
SEARCH_TEXT_SQL = (
    "lower(external_order_id || ' ' || order_ref || ' ' || coalesce(customer_name, '') || ' ' "
    "|| coalesce(customer_email, ''))"
)


class Order(TimestampMixin, Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("tenant_id", "marketplace", "external_order_id"),
        CheckConstraint("total_amount IS NULL OR total_amount >= 0", name="total_not_negative"),
        Index("ix_orders_tenant_order_date", "tenant_id", text("order_date DESC"), text("id DESC")),
        Index(
            "ix_orders_tenant_status_date",
            "tenant_id",
            "order_status",
            text("order_date DESC"),
            text("id DESC"),
        ),
        Index(
            "ix_orders_tenant_marketplace_date",
            "tenant_id",
            "marketplace",
            text("order_date DESC"),
            text("id DESC"),
        ),
        Index(
            "ix_orders_tenant_delivery_date",
            "tenant_id",
            "delivery_status",
            text("order_date DESC"),
        ),
        Index(
            "ix_orders_tenant_sav_date",
            "tenant_id",
            "sav_status",
            text("order_date DESC"),
            postgresql_where=text("sav_status <> 'NONE'"),
        ),
        Index(
            "ix_orders_tenant_ship_by_open",
            "tenant_id",
            "latest_ship_date",
            postgresql_where=text("order_status IN ('PENDING', 'CONFIRMED')"),
        ),
        Index(
            "ix_orders_search_text_trgm",
            "search_text",
            postgresql_using="gin",
            postgresql_ops={"search_text": "gin_trgm_ops"},
        ),
        Index("ix_orders_tenant_updated", "tenant_id", "updated_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=UUID7_DEFAULT)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    marketplace: Mapped[str] = mapped_column(String(32))
    marketplace_id: Mapped[str | None] = mapped_column(String(32))
    external_order_id: Mapped[str] = mapped_column(String(64))
    order_ref: Mapped[str] = mapped_column(String(64))
    customer_name: Mapped[str | None] = mapped_column(Text)
    customer_email: Mapped[str | None] = mapped_column(Text)
    order_date: Mapped[dt.datetime]
    currency: Mapped[str | None] = mapped_column(String(3))
    total_amount: Mapped[Decimal | None] = mapped_column(Numeric())
    order_status: Mapped[OrderStatus] = mapped_column(pg_enum(OrderStatus, "order_status"))
    delivery_status: Mapped[DeliveryStatus | None] = mapped_column(
        pg_enum(DeliveryStatus, "delivery_status")
    )
    sav_status: Mapped[SavStatus] = mapped_column(
        pg_enum(SavStatus, "sav_status"), server_default=SavStatus.NONE.value
    )
    carrier: Mapped[str | None] = mapped_column(Text)
    tracking_code: Mapped[str | None] = mapped_column(Text)
    shipping_address: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    fulfillment_channel: Mapped[str | None] = mapped_column(String(16))
    latest_ship_date: Mapped[dt.datetime | None]
    latest_delivery_date: Mapped[dt.datetime | None]
    external_updated_at: Mapped[dt.datetime]
    shipped_at: Mapped[dt.datetime | None]
    delivered_at: Mapped[dt.datetime | None]
    search_text: Mapped[str] = mapped_column(Text, Computed(SEARCH_TEXT_SQL, persisted=True))
    items_digest: Mapped[str | None] = mapped_column(
        String(32), comment="Fingerprint of the last item list a marketplace gave."
    )
    enriched_at: Mapped[dt.datetime | None] = mapped_column(
        comment="When an API record first brought the order's details (null: report data only)."
    )
    detail: Mapped[int] = mapped_column(
        SmallInteger,
        server_default=text("0"),
        comment="How much the stored version's source told: 0 report, 1 v0, 2 v2026 (Detail).",
    )

    items: Mapped[list[OrderItem]] = relationship(
        back_populates="order", lazy="raise", order_by="OrderItem.external_item_id"
    )


class OrderItem(Base):
    __tablename__ = "order_items"
    __table_args__ = (
        UniqueConstraint("order_id", "external_item_id"),
        CheckConstraint("quantity >= 0", name="quantity_not_negative"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=UUID7_DEFAULT)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    external_item_id: Mapped[str] = mapped_column(String(64))
    sku: Mapped[str | None] = mapped_column(Text)
    asin: Mapped[str | None] = mapped_column(String(20))
    title: Mapped[str | None] = mapped_column(Text)
    quantity: Mapped[int]
    unit_price: Mapped[Decimal | None] = mapped_column(Numeric())
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())

    order: Mapped[Order] = relationship(back_populates="items", lazy="raise")


# SKU search is a case-insensitive prefix match: ``lower(sku) LIKE 'abc%'``.
Index(
    "ix_order_items_tenant_sku",
    OrderItem.tenant_id,
    func.lower(OrderItem.sku).label("lower_sku"),
    postgresql_ops={"lower_sku": "text_pattern_ops"},
)


class EventField(enum.StrEnum):
    """The order fields whose every change is kept in the order's timeline (``order_events``)."""

    ORDER_STATUS = "orderStatus"
    DELIVERY_STATUS = "deliveryStatus"
    TRACKING_CODE = "trackingCode"
    SAV_STATUS = "savStatus"


class EventSource(enum.StrEnum):
    """What made a change: a backfill's import, an incremental sync, a one-order refresh, or an
    agent (the helpdesk-owned fields)."""

    BACKFILL = "backfill"
    SYNC = "sync"
    REFRESH = "refresh"
    AGENT = "agent"


class OrderEvent(Base):
    """One change of one field of an order, appended in the transaction that made it."""

    __tablename__ = "order_events"
    # Serves the per-order timeline and the cascade when an order is deleted.
    __table_args__ = (Index("ix_order_events_order_occurred", "order_id", "occurred_at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=UUID7_DEFAULT)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    # The clock, not the transaction's start: two changes in one transaction stay in order.
    occurred_at: Mapped[dt.datetime] = mapped_column(server_default=func.clock_timestamp())
    field: Mapped[EventField] = mapped_column(pg_enum(EventField, "order_event_field"))
    from_value: Mapped[str | None] = mapped_column(Text)
    to_value: Mapped[str | None] = mapped_column(Text)
    source: Mapped[EventSource] = mapped_column(pg_enum(EventSource, "order_event_source"))


class QuarantinedOrder(Base):
    """An order a marketplace sent that could not be stored, kept with what was received."""

    __tablename__ = "order_quarantine"
    __table_args__ = (
        Index(
            "ix_order_quarantine_tenant_created",
            "tenant_id",
            text("created_at DESC"),
            text("id DESC"),
        ),
        Index("ix_order_quarantine_backfill_job_id", "backfill_job_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=UUID7_DEFAULT)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    marketplace: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(64))
    # Text, not String(64): whatever was sent as an id is kept, however malformed.
    external_order_id: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    backfill_job_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("backfill_jobs.id", ondelete="SET NULL")
    )
    # The clock, not the transaction's start: a page of rejects lists newest first exactly.
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.clock_timestamp())

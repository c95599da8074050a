from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from pydantic import ConfigDict, Field

from keybuzz.orders.models import DeliveryStatus, OrderStatus, SavStatus, SlaStatus
from keybuzz.schemas import Money, Schema, UtcDateTime

SortName = Literal["-orderDate", "orderDate", "-updatedAt", "updatedAt"]

# --- The internal order model every writer produces (Amazon v0, v2026, reports, tests) --------


@dataclass(slots=True, frozen=True, kw_only=True)
class ItemRecord:
    external_item_id: str
    quantity: int
    sku: str | None = None
    asin: str | None = None
    title: str | None = None
    unit_price: Decimal | None = None


@dataclass(slots=True, frozen=True, kw_only=True)
class OrderRecord:
    """One marketplace order, normalised. ``None`` means "this source did not say"."""

    marketplace: str
    external_order_id: str
    order_date: dt.datetime
    order_status: OrderStatus
    external_updated_at: dt.datetime
    order_ref: str | None = None
    marketplace_id: str | None = None
    customer_name: str | None = None
    customer_email: str | None = None
    currency: str | None = None
    total_amount: Decimal | None = None
    delivery_status: DeliveryStatus | None = None
    carrier: str | None = None
    tracking_code: str | None = None
    shipping_address: dict[str, Any] | None = None
    fulfillment_channel: str | None = None
    latest_ship_date: dt.datetime | None = None
    latest_delivery_date: dt.datetime | None = None
    shipped_at: dt.datetime | None = None
    delivered_at: dt.datetime | None = None
    items: tuple[ItemRecord, ...] | None = field(default=None)
    """The full item list, or ``None`` when this source carries no items (keep what is stored)."""


@dataclass(slots=True, frozen=True)
class UpsertResult:
    orders_received: int
    orders_written: int
    items_written: int


# --- API shapes -------------------------------------------------------------------------------


class OrderItemRead(Schema):
    id: uuid.UUID
    external_item_id: str
    sku: str | None
    asin: str | None
    title: str | None
    quantity: int
    unit_price: Money | None


class OrderRead(Schema):
    id: uuid.UUID
    marketplace: str
    marketplace_id: str | None
    external_order_id: str
    order_ref: str
    customer_name: str | None
    customer_email: str | None
    order_date: UtcDateTime
    currency: str | None
    total_amount: Money | None
    order_status: OrderStatus
    delivery_status: DeliveryStatus | None
    sav_status: SavStatus
    sla_status: SlaStatus = Field(description="Computed when read, from the ship-by date.")
    carrier: str | None
    tracking_code: str | None
    shipping_address: dict[str, Any] | None
    fulfillment_channel: str | None
    latest_ship_date: UtcDateTime | None
    latest_delivery_date: UtcDateTime | None
    external_updated_at: UtcDateTime
    shipped_at: UtcDateTime | None
    delivered_at: UtcDateTime | None
    created_at: UtcDateTime
    updated_at: UtcDateTime
    items: list[OrderItemRead]


class OrderPage(Schema):
    items: list[OrderRead]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


class OrderListParams(Schema):
    """Filters of the order list. Unknown parameters are rejected, so a typo never widens it."""

    model_config = ConfigDict(extra="forbid")

    marketplace: list[str] = Field(default_factory=list, description="e.g. `amazon`; repeatable.")
    order_status: list[OrderStatus] = Field(default_factory=list)
    delivery_status: list[DeliveryStatus] = Field(default_factory=list)
    sav_status: list[SavStatus] = Field(default_factory=list)
    sla_status: list[SlaStatus] = Field(default_factory=list)
    date_from: dt.datetime | None = Field(
        default=None, alias="from", description="Order date ≥ this instant."
    )
    date_to: dt.datetime | None = Field(
        default=None, alias="to", description="Order date < this instant."
    )
    q: str | None = Field(
        default=None,
        max_length=200,
        description="Order ref, external id, buyer name or email (contains), or SKU (prefix).",
    )
    sort: SortName = Field(default="-orderDate", description="Newest first by default.")
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=500, description="`nextCursor` as given.")


class OrderPatch(Schema):
    """The fields the helpdesk owns. Marketplace data cannot be changed here."""

    model_config = ConfigDict(extra="forbid")

    sav_status: SavStatus


class PurgeResult(Schema):
    deleted_orders: int
    marketplace: str | None

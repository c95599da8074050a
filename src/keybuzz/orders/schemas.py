from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import ConfigDict, Field

from keybuzz.orders.models import EventField, EventSource
from keybuzz.orders.records import DeliveryStatus, OrderStatus, SavStatus, SlaStatus
from keybuzz.schemas import DateTimeParam, Money, Schema, SqlText, UtcDateTime

SortName = Literal["-orderDate", "orderDate", "-updatedAt", "updatedAt"]
SEARCH_PATTERN = "^ *[^ ][\\s\\S]+[^ ] *$"
"""At least 3 characters once the spaces around them are left out (``service.build_query``)."""


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
    enriched_at: UtcDateTime | None = Field(
        description="When Amazon's API first gave the order's details (buyer, totals, "
        "deadlines); null while only the order report's lines are known, so a null total "
        "means not known yet."
    )
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

    marketplace: list[SqlText] = Field(
        default_factory=list, description="e.g. `amazon`; repeatable."
    )
    order_status: list[OrderStatus] = Field(default_factory=list)
    delivery_status: list[DeliveryStatus] = Field(default_factory=list)
    sav_status: list[SavStatus] = Field(default_factory=list)
    sla_status: list[SlaStatus] = Field(default_factory=list)
    date_from: DateTimeParam | None = Field(
        default=None, alias="from", description="Order date ≥ this instant; not after `to`."
    )
    date_to: DateTimeParam | None = Field(
        default=None, alias="to", description="Order date < this instant."
    )
    q: SqlText | None = Field(
        default=None,
        max_length=200,
        json_schema_extra={"pattern": SEARCH_PATTERN},
        description="Order ref, external id, buyer name or email (contains), or SKU (prefix).",
    )
    sort: SortName = Field(default="-orderDate", description="Newest first by default.")
    limit: int = Field(default=50, ge=1, le=200)
    cursor: SqlText | None = Field(
        default=None, max_length=500, description="`nextCursor` as given."
    )


class OrderPatch(Schema):
    """The fields the helpdesk owns. Marketplace data cannot be changed here."""

    model_config = ConfigDict(extra="forbid")

    sav_status: SavStatus


class PurgeResult(Schema):
    deleted_orders: int
    marketplace: str | None


class OrderEventRead(Schema):
    occurred_at: UtcDateTime = Field(description="When KeyBuzz recorded the change.")
    field: EventField
    from_value: str | None = Field(alias="from", description="Null: the field had no value.")
    to_value: str | None = Field(alias="to")
    source: EventSource


class OrderEventList(Schema):
    items: list[OrderEventRead] = Field(description="Oldest first.")


class QuarantinedOrderRead(Schema):
    id: uuid.UUID
    marketplace: str
    source: str = Field(description="Where it came from, e.g. `v2026.searchOrders`, `report`.")
    external_order_id: str | None
    reason: str
    payload: dict[str, Any] = Field(description="What the marketplace sent, as received.")
    backfill_job_id: uuid.UUID | None
    created_at: UtcDateTime


class QuarantinePage(Schema):
    items: list[QuarantinedOrderRead]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


class QuarantineListParams(Schema):
    model_config = ConfigDict(extra="forbid")

    backfill_job_id: uuid.UUID | None = Field(
        default=None, description="Only the orders this backfill set aside."
    )
    limit: int = Field(default=50, ge=1, le=200)
    cursor: SqlText | None = Field(
        default=None, max_length=500, description="`nextCursor` as given."
    )

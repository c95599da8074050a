"""What an order is, free of any database or web framework: its statuses, the SLA rule's
terms, and ``OrderRecord``, the normalised order every marketplace adapter produces."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


class OrderStatus(enum.StrEnum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    CANCELLED = "CANCELLED"
    RETURNED = "RETURNED"


class DeliveryStatus(enum.StrEnum):
    PREPARING = "PREPARING"
    SHIPPED = "SHIPPED"
    IN_TRANSIT = "IN_TRANSIT"
    OUT_FOR_DELIVERY = "OUT_FOR_DELIVERY"
    DELIVERED = "DELIVERED"
    DELAYED = "DELAYED"
    LOST = "LOST"


class SavStatus(enum.StrEnum):
    """After-sales (service après-vente) state, owned by the helpdesk, never by a marketplace."""

    NONE = "NONE"
    OPEN = "OPEN"
    IN_PROGRESS = "IN_PROGRESS"
    RESOLVED = "RESOLVED"


class SlaStatus(enum.StrEnum):
    """Where an order stands against its ship-by date (``latest_ship_date``), as of now: an order
    still to ship is ``BREACHED`` past it, ``AT_RISK`` within ``AT_RISK_WINDOW`` of it, else
    ``OK``; an order with nothing left to ship, or no ship-by date, is ``OK``."""

    OK = "OK"
    AT_RISK = "AT_RISK"
    BREACHED = "BREACHED"


class Detail(enum.IntEnum):
    """How much of an order a source tells. Of two views of the same version of an order, the
    more detailed one stands: the other adds nothing (a report does not undo what an order
    API said, v0 does not undo a delivery that v2026's packages showed)."""

    REPORT = 0
    """An order report: statuses, items, the place; no buyer, deadline or total."""
    ORDER = 1
    """An order API without packages (v0): buyer, recipient, totals, deadlines too."""
    FULL = 2
    """An order API with its packages (v2026): whether and when it was delivered too."""


TO_SHIP_STATUSES = (OrderStatus.PENDING, OrderStatus.CONFIRMED)
"""Orders with something left to ship: the only ones that can breach the ship-by SLA."""
AT_RISK_WINDOW = dt.timedelta(hours=24)


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
    detail: Detail = Detail.REPORT
    """How much of the order this source tells (a report, or an order API)."""

    @property
    def enriched(self) -> bool:
        """This source is an order API, not a report line: it brings the order's details
        (buyer, recipient, totals, deadlines) as far as Amazon gives them."""
        return self.detail > Detail.REPORT


@dataclass(slots=True, frozen=True, kw_only=True)
class RejectedOrder:
    """An order a marketplace sent that cannot be stored (unknown status, bad date, missing id):
    kept aside with what was received and why, never a reason to stop an import."""

    marketplace: str
    source: str
    """Where it came from, e.g. ``v2026.searchOrders``, ``v0.getOrders``, ``report``."""
    reason: str
    payload: dict[str, Any]
    """What was received, as received (a report row as its columns)."""
    external_order_id: str | None = None

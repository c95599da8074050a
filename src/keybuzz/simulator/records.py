"""The ground-truth order records every view (v0, v2026, reports, dump) is rendered from.

Money is kept in minor units (cents, or yen). Times are whole epoch seconds. An order's status
is a function of the simulator clock: ``events`` lists its status changes, some of them in the
future, so that orders move on (and ``LastUpdateDate`` with them) as the clock runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypedDict

from keybuzz.simulator.marketplaces import Marketplace


class Status(StrEnum):
    PENDING_AVAILABILITY = "PendingAvailability"
    PENDING = "Pending"
    UNSHIPPED = "Unshipped"
    PARTIALLY_SHIPPED = "PartiallyShipped"
    SHIPPED = "Shipped"
    INVOICE_UNCONFIRMED = "InvoiceUnconfirmed"
    CANCELED = "Canceled"
    UNFULFILLABLE = "Unfulfillable"


# v2026 has no InvoiceUnconfirmed: the goods have left, so it is SHIPPED there.
V2026_STATUS = {
    Status.PENDING_AVAILABILITY: "PENDING_AVAILABILITY",
    Status.PENDING: "PENDING",
    Status.UNSHIPPED: "UNSHIPPED",
    Status.PARTIALLY_SHIPPED: "PARTIALLY_SHIPPED",
    Status.SHIPPED: "SHIPPED",
    Status.INVOICE_UNCONFIRMED: "SHIPPED",
    Status.CANCELED: "CANCELLED",
    Status.UNFULFILLABLE: "UNFULFILLABLE",
}
PRE_PAYMENT = frozenset({Status.PENDING_AVAILABILITY, Status.PENDING})
SHIPPING_ADDRESS_STATUSES = frozenset(
    {Status.UNSHIPPED, Status.PARTIALLY_SHIPPED, Status.SHIPPED, Status.INVOICE_UNCONFIRMED}
)
SHIPPED_STATUSES = frozenset({Status.SHIPPED, Status.INVOICE_UNCONFIRMED})
AFN = "AFN"
MFN = "MFN"


def is_priced(status: Status) -> bool:
    """Amazon shows no prices or totals before payment is authorized, nor once canceled."""
    return status not in PRE_PAYMENT and status is not Status.CANCELED


@dataclass(frozen=True, slots=True)
class Product:
    asin: str
    sku: str
    title: str


@dataclass(slots=True)
class Item:
    order_item_id: str
    product: Product
    quantity: int
    unit_price: int
    shipping_price: int
    promotion_discount: int
    shipping_discount: int
    promotion_id: str | None
    gift_message: str | None
    ships_first: bool = False

    @property
    def line_total(self) -> int:
        return self.unit_price * self.quantity

    @property
    def is_gift(self) -> bool:
        return self.gift_message is not None

    def proceeds(self) -> int:
        return (
            self.line_total + self.shipping_price - self.promotion_discount - self.shipping_discount
        )


@dataclass(slots=True)
class Address:
    name: str
    line1: str
    line2: str | None
    city: str
    region: str
    postal_code: str
    country: str
    phone: str
    commercial: bool
    company: str | None = None


class AddressFields(TypedDict, total=False):
    name: str
    line1: str
    line2: str
    city: str
    region: str
    postal_code: str
    phone: str


@dataclass(slots=True)
class Order:
    order_id: str
    seller_order_id: str
    marketplace: Marketplace
    channel: str
    created: int
    events: list[tuple[int, Status]]
    items: list[Item]
    buyer_name: str
    buyer_email: str
    address: Address
    ship_service_level: str
    service_category: str
    is_prime: bool = False
    is_business: bool = False
    is_preorder: bool = False
    purchase_order_number: str | None = None
    cancel_reason: str | None = None
    ship_window: tuple[int, int] | None = None
    delivery_window: tuple[int, int] | None = None
    position: int = field(default=-1)

    def status_at(self, now: int) -> Status:
        return self._event_at(now)[1]

    def last_update_at(self, now: int) -> int:
        return self._event_at(now)[0]

    def _event_at(self, now: int) -> tuple[int, Status]:
        current = self.events[0]
        for event in self.events:
            if event[0] > now:
                break
            current = event
        return current

    def change(self, now: int, status: Status) -> None:
        """A change made now (by the seller or Amazon) replaces any change still to come."""
        self.events = [event for event in self.events if event[0] < now]
        self.events.append((now, status))

    @property
    def is_afn(self) -> bool:
        return self.channel == AFN

    def first_shipment_at(self, now: int) -> int | None:
        for when, status in self.events:
            if when > now:
                break
            if status in SHIPPED_STATUSES or status is Status.PARTIALLY_SHIPPED:
                return when
        return None

    def phone_visible(self, status: Status, now: int) -> bool:
        """Phone is suppressed for AFN, and for shipped MFN orders past the delivery promise."""
        if self.is_afn:
            return False
        past_delivery = self.delivery_window is not None and now > self.delivery_window[1]
        return not (status in SHIPPED_STATUSES and past_delivery)

    def quantity_shipped(self, item: Item, status: Status) -> int:
        if status in SHIPPED_STATUSES:
            return item.quantity
        if status == Status.PARTIALLY_SHIPPED and item.ships_first:
            return item.quantity
        return 0

    def total(self) -> int:
        return sum(item.proceeds() for item in self.items)

    def vat_part(self, amount: int) -> int:
        """VAT included in a tax-inclusive amount (EU/UK/JP); zero where prices are net (US)."""
        rate = self.marketplace.vat_percent
        return round(amount * rate / (100 + rate))

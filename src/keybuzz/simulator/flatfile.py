"""The order-tracking flat file (``GET_FLAT_FILE_ALL_ORDERS_DATA_*``): TSV, one row per item.

Columns are Amazon's (spapi.md §8.1). No buyer name, email or street address: the report
carries no customer-identifying information.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from keybuzz.simulator.faults import NOT_A_DATE
from keybuzz.simulator.money import decimal_string
from keybuzz.simulator.records import SHIPPED_STATUSES, Item, Order, Status, is_priced

COLUMNS = (
    "amazon-order-id",
    "merchant-order-id",
    "purchase-date",
    "last-updated-date",
    "order-status",
    "fulfillment-channel",
    "sales-channel",
    "order-channel",
    "ship-service-level",
    "product-name",
    "sku",
    "asin",
    "item-status",
    "quantity",
    "currency",
    "item-price",
    "item-tax",
    "shipping-price",
    "shipping-tax",
    "gift-wrap-price",
    "gift-wrap-tax",
    "item-promotion-discount",
    "ship-promotion-discount",
    "ship-city",
    "ship-state",
    "ship-postal-code",
    "ship-country",
    "promotion-ids",
    "cpf",
    "is-business-order",
    "purchase-order-number",
    "price-designation",
)
_ORDER_STATUS = {
    Status.PENDING_AVAILABILITY: "Pending",
    Status.PENDING: "Pending",
    Status.UNSHIPPED: "Unshipped",
    Status.PARTIALLY_SHIPPED: "PartiallyShipped",
    Status.SHIPPED: "Shipped",
    Status.INVOICE_UNCONFIRMED: "Shipped",
    Status.CANCELED: "Cancelled",
    Status.UNFULFILLABLE: "Unfulfillable",
}


def report_time(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def _item_status(order: Order, item: Item, status: Status) -> str:
    if status is Status.CANCELED:
        return "Cancelled"
    if status in SHIPPED_STATUSES or order.quantity_shipped(item, status):
        return "Shipped"
    return "Unshipped"


def item_row(order: Order, item: Item, now: int) -> list[str]:
    status = order.status_at(now)
    decimals = order.marketplace.decimals

    def money(minor: int) -> str:
        return decimal_string(minor, decimals) if is_priced(status) else ""

    address = order.address
    has_address = status is not Status.CANCELED
    return [
        order.order_id,
        order.seller_order_id,
        report_time(order.created),
        report_time(order.last_update_at(now)),
        _ORDER_STATUS[status],
        "Amazon" if order.is_afn else "Merchant",
        order.marketplace.name,
        "",
        order.service_category,
        item.product.title,
        item.product.sku,
        item.product.asin,
        _item_status(order, item, status),
        str(item.quantity),
        order.marketplace.currency,
        money(item.line_total),
        money(order.vat_part(item.line_total)),
        money(item.shipping_price),
        money(order.vat_part(item.shipping_price)),
        money(0),
        money(0),
        money(-item.promotion_discount),
        money(-item.shipping_discount),
        address.city if has_address else "",
        address.region if has_address else "",
        address.postal_code if has_address else "",
        address.country if has_address else "",
        item.promotion_id or "",
        "",
        "true" if order.is_business else "false",
        order.purchase_order_number or "",
        "BusinessPrice" if order.is_business else "",
    ]


def render(orders: Iterable[Order], now: int, *, break_first_row: bool = False) -> str:
    """The document. ``break_first_row``: its first line's purchase date is not a date (the
    ``malformed_order`` fault)."""
    lines = ["\t".join(COLUMNS)]
    for order in orders:
        for item in order.items:
            row = item_row(order, item, now)
            if break_first_row and len(lines) == 1:
                row[COLUMNS.index("purchase-date")] = NOT_A_DATE
            lines.append("\t".join(row))
    return "\n".join(lines) + "\n"

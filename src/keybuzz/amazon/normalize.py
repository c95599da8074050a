"""Amazon orders (v2026, v0, report rows) -> the internal ``OrderRecord``.

Rules: ``None`` means "this source did not say" (the upsert then keeps what is stored), so a
field is only filled from what Amazon sent, never guessed; money is ``Decimal``; v0 ``ItemPrice``
and the report's ``item-price`` are line totals (unit price = line / quantity, rounded to the
amount's own decimals), v2026 ``unitPrice`` is already per unit. Statuses go through
``STATUS_TABLE``, the one mapping, documented in docs/amazon.md. A record says how much of the
order its source tells (``Detail``): a report's the least, v0's the order's details (buyer,
recipient, totals, deadlines), v2026's its packages too.

An order that cannot be normalised raises one of ``NORMALIZE_ERRORS``; the listing and the
report reader turn it into a ``RejectedOrder`` (``from_report_lines`` does so itself).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from keybuzz.amazon import models_v0, models_v2026
from keybuzz.amazon.errors import AmazonMalformedResponse
from keybuzz.amazon.flatfile import OrderReportRow, ReportLine
from keybuzz.amazon.regions import marketplace_by_sales_channel
from keybuzz.orders.records import (
    DeliveryStatus,
    Detail,
    ItemRecord,
    OrderRecord,
    OrderStatus,
    RejectedOrder,
)

MARKETPLACE = "amazon"
REPORT_SOURCE = "report"
NORMALIZE_ERRORS = (AmazonMalformedResponse, ValueError, ArithmeticError)
"""What normalising one order raises when Amazon sent something KeyBuzz cannot store."""

# Amazon's order status -> ours. Keys are the status with case, "_" and "-" dropped, so one row
# serves v0 ``OrderStatus`` (PartiallyShipped), v2026 ``fulfillmentStatus`` (PARTIALLY_SHIPPED)
# and the report's ``order-status``.
STATUS_TABLE: dict[str, tuple[OrderStatus, DeliveryStatus | None]] = {
    # Pre-order, not payable yet / placed, payment not authorised: nothing to prepare yet.
    "PENDINGAVAILABILITY": (OrderStatus.PENDING, None),
    "PENDING": (OrderStatus.PENDING, None),
    # Paid, nothing shipped: the seller prepares it; the ship-by SLA runs.
    "UNSHIPPED": (OrderStatus.CONFIRMED, DeliveryStatus.PREPARING),
    # Some lines left: still to ship, so the ship-by SLA still runs.
    "PARTIALLYSHIPPED": (OrderStatus.CONFIRMED, DeliveryStatus.PREPARING),
    "SHIPPED": (OrderStatus.SHIPPED, DeliveryStatus.SHIPPED),
    # v0 only: shipped, the seller has not confirmed the invoice (v2026 says SHIPPED).
    "INVOICEUNCONFIRMED": (OrderStatus.SHIPPED, DeliveryStatus.SHIPPED),
    "CANCELED": (OrderStatus.CANCELLED, None),
    "CANCELLED": (OrderStatus.CANCELLED, None),
    # Multi-Channel Fulfillment order Amazon cannot fulfil: it will not ship.
    "UNFULFILLABLE": (OrderStatus.CANCELLED, None),
}
# v2026 packages (seller-fulfilled orders, includedData=PACKAGES) tell more about a SHIPPED
# order: every package DELIVERED -> DELIVERED; otherwise the furthest-behind signal below.
PACKAGE_DELIVERY = (
    ("LOST", DeliveryStatus.LOST),
    ("OUT_FOR_DELIVERY", DeliveryStatus.OUT_FOR_DELIVERY),
    ("IN_TRANSIT", DeliveryStatus.IN_TRANSIT),
)
_CHANNELS = {"AMAZON": "AFN", "MERCHANT": "MFN", "AFN": "AFN", "MFN": "MFN"}


def map_status(amazon_status: str, order_id: str) -> tuple[OrderStatus, DeliveryStatus | None]:
    # The keys are letters only: a status of letters alone is its own key.
    status = STATUS_TABLE.get(amazon_status.upper())
    if status is not None:
        return status
    key = "".join(ch for ch in amazon_status.upper() if ch.isalpha())
    try:
        return STATUS_TABLE[key]
    except KeyError:
        raise AmazonMalformedResponse(
            f"order {order_id}: unknown order status {amazon_status[:40]!r}"
        ) from None


def _channel(value: str | None) -> str | None:
    if value is None:
        return None
    return _CHANNELS.get(value.upper(), value)


def _per_unit(line_total: Decimal | None, quantity: int) -> Decimal | None:
    if line_total is None or quantity <= 0:
        return None
    unit = line_total / quantity
    if line_total.is_finite():
        # Quantizing to the line total itself takes its exponent without taking it apart
        # (as_tuple); where that fails (an exponent out of the context's range) the long way
        # below gives what it always gave.
        try:
            return unit.quantize(line_total)
        except ArithmeticError:
            pass
    exponent = line_total.as_tuple().exponent
    return unit.quantize(Decimal(1).scaleb(exponent)) if isinstance(exponent, int) else unit


def _address(fields: dict[str, str | None]) -> dict[str, str] | None:
    kept = {key: value.strip() for key, value in fields.items() if value and value.strip()}
    if "addressType" in kept:
        kept["addressType"] = kept["addressType"].upper()
    return kept or None


# --- v2026 ------------------------------------------------------------------------------------


def _package_status(
    order: models_v2026.Order, status: tuple[OrderStatus, DeliveryStatus | None]
) -> tuple[OrderStatus, DeliveryStatus | None]:
    if status[0] is not OrderStatus.SHIPPED or not order.packages:
        return status
    signals = {
        value
        for package in order.packages
        if package.package_status is not None
        for value in (package.package_status.status, package.package_status.detailed_status)
        if value
    }
    delivered = all(
        p.package_status is not None and p.package_status.status == "DELIVERED"
        for p in order.packages
    )
    if delivered:
        return OrderStatus.DELIVERED, DeliveryStatus.DELIVERED
    for signal, delivery in PACKAGE_DELIVERY:
        if signal in signals:
            return OrderStatus.SHIPPED, delivery
    return status


def from_v2026(order: models_v2026.Order) -> OrderRecord:
    """Needs ``includedData`` with ``FULFILLMENT`` (the status lives there)."""
    fulfillment = order.fulfillment
    if fulfillment is None:
        raise ValueError(f"order {order.order_id} has no fulfillment: ask includedData=FULFILLMENT")
    status = _package_status(order, map_status(fulfillment.fulfillment_status, order.order_id))
    total = order.proceeds.grand_total if order.proceeds else None
    prices = [
        i.product.price.unit_price
        for i in order.order_items
        if i.product.price and i.product.price.unit_price
    ]
    buyer = order.buyer
    address = order.recipient.delivery_address if order.recipient else None
    shipped = [p for p in order.packages if p.ship_time is not None]
    first = order.packages[0] if order.packages else None
    return OrderRecord(
        marketplace=MARKETPLACE,
        external_order_id=order.order_id,
        order_ref=order.seller_order_id or order.order_id,
        marketplace_id=order.sales_channel.marketplace_id,
        order_date=order.created_time,
        external_updated_at=order.last_updated_time,
        order_status=status[0],
        delivery_status=status[1],
        customer_name=buyer.buyer_name if buyer else None,
        customer_email=buyer.buyer_email if buyer else None,
        currency=total.currency_code if total else (prices[0].currency_code if prices else None),
        total_amount=total.amount if total else None,
        carrier=first.carrier if first else None,
        tracking_code=first.tracking_number if first else None,
        shipping_address=_address(address.model_dump(by_alias=True)) if address else None,
        fulfillment_channel=_channel(fulfillment.fulfilled_by),
        latest_ship_date=fulfillment.ship_by_window.latest_date_time
        if fulfillment.ship_by_window
        else None,
        latest_delivery_date=fulfillment.deliver_by_window.latest_date_time
        if fulfillment.deliver_by_window
        else None,
        shipped_at=min(p.ship_time for p in shipped if p.ship_time) if shipped else None,
        detail=Detail.FULL,
        items=tuple(
            ItemRecord(
                external_item_id=item.order_item_id,
                quantity=item.quantity_ordered,
                sku=item.product.seller_sku,
                asin=item.product.asin,
                title=item.product.title,
                unit_price=item.product.price.unit_price.amount
                if item.product.price and item.product.price.unit_price
                else None,
            )
            for item in order.order_items
        ),
    )


# --- v0 ---------------------------------------------------------------------------------------


def _v0_address(address: models_v0.Address | None) -> dict[str, str] | None:
    if address is None:
        return None
    return _address(
        {
            "name": address.name,
            "companyName": address.company_name,
            "addressLine1": address.address_line1,
            "addressLine2": address.address_line2,
            "addressLine3": address.address_line3,
            "city": address.city,
            "districtOrCounty": address.county or address.district,
            "stateOrRegion": address.state_or_region,
            "municipality": address.municipality,
            "postalCode": address.postal_code,
            "countryCode": address.country_code,
            "phone": address.phone,
            "addressType": address.address_type,
        }
    )


def from_v0(
    order: models_v0.Order, items: Sequence[models_v0.OrderItem] | None = None
) -> OrderRecord:
    """``items``: the order's getOrderItems, or ``None`` when they were not fetched."""
    status = map_status(order.order_status, order.amazon_order_id)
    total = order.order_total
    buyer = order.buyer_info
    currency = total.currency_code if total else None
    if currency is None and items:
        currency = next((i.item_price.currency_code for i in items if i.item_price), None)
    return OrderRecord(
        marketplace=MARKETPLACE,
        external_order_id=order.amazon_order_id,
        order_ref=order.seller_order_id or order.amazon_order_id,
        marketplace_id=order.marketplace_id,
        order_date=order.purchase_date,
        external_updated_at=order.last_update_date,
        order_status=status[0],
        delivery_status=status[1],
        customer_name=buyer.buyer_name if buyer else None,
        customer_email=buyer.buyer_email if buyer else None,
        currency=currency,
        total_amount=total.amount if total else None,
        shipping_address=_v0_address(order.shipping_address),
        fulfillment_channel=_channel(order.fulfillment_channel),
        latest_ship_date=order.latest_ship_date,
        latest_delivery_date=order.latest_delivery_date,
        detail=Detail.ORDER,
        items=None
        if items is None
        else tuple(
            ItemRecord(
                external_item_id=item.order_item_id,
                quantity=item.quantity_ordered,
                sku=item.seller_sku,
                asin=item.asin,
                title=item.title,
                unit_price=_per_unit(
                    item.item_price.amount if item.item_price else None, item.quantity_ordered
                ),
            )
            for item in items
        ),
    )


# --- order report rows ------------------------------------------------------------------------


def _report_item_ids(rows: Sequence[OrderReportRow]) -> list[str]:
    """The report has no order-item id: a line is known by its SKU (else ASIN), made unique."""
    if len(rows) == 1:
        return [rows[0].sku or rows[0].asin or "line-1"]
    seen: dict[str, int] = {}
    ids = []
    for index, row in enumerate(rows):
        base = row.sku or row.asin or f"line-{index + 1}"
        seen[base] = seen.get(base, 0) + 1
        ids.append(base if seen[base] == 1 else f"{base}#{seen[base]}")
    return ids


def from_report_rows(rows: Sequence[OrderReportRow]) -> OrderRecord:
    """The rows of one order (``flatfile.group_by_order``). No buyer, street, deadline or total
    is in the report: those stay ``None``."""
    if not rows:
        raise ValueError("an order needs at least one report row")
    first = rows[0]
    status = map_status(first.order_status, first.amazon_order_id)
    market = marketplace_by_sales_channel(first.sales_channel) if first.sales_channel else None
    address = _address(
        {
            "city": first.ship_city,
            "stateOrRegion": first.ship_state,
            "postalCode": first.ship_postal_code,
            "countryCode": first.ship_country,
        }
    )
    return OrderRecord(
        marketplace=MARKETPLACE,
        external_order_id=first.amazon_order_id,
        order_ref=first.merchant_order_id or first.amazon_order_id,
        marketplace_id=market.id if market else None,
        order_date=first.purchase_date,
        external_updated_at=first.last_updated_date
        if len(rows) == 1
        else max(row.last_updated_date for row in rows),
        order_status=status[0],
        delivery_status=status[1],
        currency=first.currency or next((row.currency for row in rows if row.currency), None),
        shipping_address=address,
        fulfillment_channel=_channel(first.fulfillment_channel),
        items=tuple(
            ItemRecord(
                external_item_id=item_id,
                quantity=row.quantity,
                sku=row.sku,
                asin=row.asin,
                title=row.product_name,
                unit_price=_per_unit(row.item_price, row.quantity),
            )
            for item_id, row in zip(_report_item_ids(rows), rows, strict=True)
        ),
    )


def from_report_lines(lines: Sequence[ReportLine]) -> OrderRecord | RejectedOrder:
    """The lines of one order (``flatfile.group_by_order``) as its record, or set aside when a
    line cannot be read or the order cannot be normalised (an unknown status). A rejected order
    carries the offending line's columns; its other lines are set aside with it, since an
    order without some of its lines would lose items."""
    bad = next((line for line in lines if line.row is None), None)
    if bad is None:
        rows = [line.row for line in lines if line.row is not None]
        try:
            return from_report_rows(rows)
        except NORMALIZE_ERRORS as error:
            return _rejected_report(lines, lines[0], str(error))
    return _rejected_report(lines, bad, f"order report line {bad.number}: {bad.problem}")


def _rejected_report(lines: Sequence[ReportLine], shown: ReportLine, reason: str) -> RejectedOrder:
    others = len(lines) - 1
    if others:
        reason += f" ({others} other line(s) of the order set aside with it)"
    return RejectedOrder(
        marketplace=MARKETPLACE,
        source=REPORT_SOURCE,
        reason=reason,
        payload=shown.columns(),
        external_order_id=next((line.order_id for line in lines if line.order_id), None),
    )

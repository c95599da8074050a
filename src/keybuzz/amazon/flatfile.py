"""The order-tracking flat file (``GET_FLAT_FILE_ALL_ORDERS_DATA_*``), parsed as a stream.

Tab-separated, a header line, one row per order item (an order's rows follow each other),
no quoting. Bytes come in, typed rows go out one at a time: memory stays flat whatever the
report's size. Unknown columns are ignored; a missing optional column reads as empty.
"""

from __future__ import annotations

import codecs
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from keybuzz.amazon.errors import AmazonMalformedResponse
from keybuzz.amazon.models_common import parse_amazon_time

REQUIRED_COLUMNS = (
    "amazon-order-id",
    "purchase-date",
    "last-updated-date",
    "order-status",
    "quantity",
)


@dataclass(frozen=True, slots=True)
class OrderReportRow:
    """One line of the report: one item of one order. Empty cells are ``None``."""

    amazon_order_id: str
    merchant_order_id: str | None
    purchase_date: datetime
    last_updated_date: datetime
    order_status: str
    fulfillment_channel: str | None
    sales_channel: str | None
    ship_service_level: str | None
    product_name: str | None
    sku: str | None
    asin: str | None
    item_status: str | None
    quantity: int
    currency: str | None
    item_price: Decimal | None
    """The line total (unit price times quantity)."""
    item_tax: Decimal | None
    shipping_price: Decimal | None
    shipping_tax: Decimal | None
    gift_wrap_price: Decimal | None
    gift_wrap_tax: Decimal | None
    item_promotion_discount: Decimal | None
    ship_promotion_discount: Decimal | None
    ship_city: str | None
    ship_state: str | None
    ship_postal_code: str | None
    ship_country: str | None
    promotion_ids: str | None
    is_business_order: bool | None
    purchase_order_number: str | None
    price_designation: str | None


class _RowReader:
    def __init__(self, header: str) -> None:
        names = [name.strip().lower() for name in header.split("\t")]
        self._index = {name: i for i, name in enumerate(names)}
        missing = [c for c in REQUIRED_COLUMNS if c not in self._index]
        if missing:
            raise AmazonMalformedResponse(f"order report without column(s) {', '.join(missing)}")

    def row(self, line: str, number: int) -> OrderReportRow:
        cells = line.split("\t")

        def text(column: str) -> str | None:
            i = self._index.get(column)
            value = cells[i].strip() if i is not None and i < len(cells) else ""
            return value or None

        def money(column: str) -> Decimal | None:
            value = text(column)
            return None if value is None else Decimal(value.replace(",", ""))

        def required(column: str) -> str:
            value = text(column)
            if value is None:
                raise ValueError(column)
            return value

        try:
            business = text("is-business-order")
            return OrderReportRow(
                amazon_order_id=required("amazon-order-id"),
                merchant_order_id=text("merchant-order-id"),
                purchase_date=parse_amazon_time(required("purchase-date")),
                last_updated_date=parse_amazon_time(required("last-updated-date")),
                order_status=required("order-status"),
                fulfillment_channel=text("fulfillment-channel"),
                sales_channel=text("sales-channel"),
                ship_service_level=text("ship-service-level"),
                product_name=text("product-name"),
                sku=text("sku"),
                asin=text("asin"),
                item_status=text("item-status"),
                quantity=int(required("quantity")),
                currency=text("currency"),
                item_price=money("item-price"),
                item_tax=money("item-tax"),
                shipping_price=money("shipping-price"),
                shipping_tax=money("shipping-tax"),
                gift_wrap_price=money("gift-wrap-price"),
                gift_wrap_tax=money("gift-wrap-tax"),
                item_promotion_discount=money("item-promotion-discount"),
                ship_promotion_discount=money("ship-promotion-discount"),
                ship_city=text("ship-city"),
                ship_state=text("ship-state"),
                ship_postal_code=text("ship-postal-code"),
                ship_country=text("ship-country"),
                promotion_ids=text("promotion-ids"),
                is_business_order=None if business is None else business.lower() == "true",
                purchase_order_number=text("purchase-order-number"),
                price_designation=text("price-designation"),
            )
        except (ValueError, InvalidOperation):
            raise AmazonMalformedResponse(f"order report line {number} is unreadable") from None


async def lines(chunks: AsyncIterable[bytes], encoding: str = "utf-8") -> AsyncIterator[str]:
    """Text lines (without their ``\\r\\n``) of a byte stream, decoded incrementally."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    pending = ""
    async for chunk in chunks:
        pending += decoder.decode(chunk)
        *complete, pending = pending.split("\n")
        for line in complete:
            yield line.rstrip("\r")
    pending += decoder.decode(b"", final=True)
    if pending.rstrip("\r"):
        yield pending.rstrip("\r")


async def parse_order_rows(
    chunks: AsyncIterable[bytes], encoding: str = "utf-8"
) -> AsyncIterator[OrderReportRow]:
    reader: _RowReader | None = None
    number = 0
    async for line in lines(chunks, encoding):
        number += 1
        if reader is None:
            reader = _RowReader(line.lstrip("\ufeff"))
        elif line.strip():
            yield reader.row(line, number)


async def group_by_order(
    rows: AsyncIterable[OrderReportRow],
) -> AsyncIterator[list[OrderReportRow]]:
    """Consecutive rows of one order, together (Amazon writes an order's lines in a run)."""
    group: list[OrderReportRow] = []
    async for row in rows:
        if group and row.amazon_order_id != group[0].amazon_order_id:
            yield group
            group = []
        group.append(row)
    if group:
        yield group

"""The order-tracking flat file (``GET_FLAT_FILE_ALL_ORDERS_DATA_*``), parsed as a stream.

Tab-separated, a header line, one row per order item (an order's rows follow each other),
no quoting. Bytes come in, lines go out one at a time: memory stays flat whatever the report's
size. Unknown columns are ignored; a missing optional column reads as empty.

A line that cannot be read (bad date or number, no order id) is not an error of the whole
document: it comes out as a ``ReportLine`` without a row, with its columns and the reason, and
the stream goes on. Data rows are counted from the first line after the header, so a reader can
resume a document after the rows it has already handled (``skip_rows``).
"""

from __future__ import annotations

import codecs
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from keybuzz.amazon.errors import AmazonMalformedResponse
from keybuzz.amazon.models_common import parse_amazon_time

REQUIRED_COLUMNS = (
    "amazon-order-id",
    "purchase-date",
    "last-updated-date",
    "order-status",
    "quantity",
)


@dataclass(slots=True)
class OrderReportRow:
    """One line of the report: one item of one order. Empty cells are ``None``.

    Not frozen: a frozen dataclass of 30 fields takes three times as long to make, and a report
    makes one per line."""

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


@dataclass(slots=True)
class ReportLine:
    """One data line of the report: its row when it could be read, else why not. Not frozen,
    as ``OrderReportRow``: a report makes one per line."""

    index: int
    """Its place among the document's data rows, from 0 (blank lines and the header aside)."""
    number: int
    """Its line number in the document (the header is line 1), for messages."""
    order_id: str | None
    """The ``amazon-order-id`` cell, when there is one."""
    row: OrderReportRow | None
    problem: str | None = None
    """Why ``row`` is ``None``: the column that could not be read, never its content."""
    cells: tuple[str, ...] = ()
    names: tuple[str, ...] = field(default=(), repr=False)

    def columns(self) -> dict[str, str]:
        """The line as the report has it: column name -> cell (missing cells are empty)."""
        return {
            name: self.cells[i] if i < len(self.cells) else "" for i, name in enumerate(self.names)
        }


@dataclass(frozen=True, slots=True)
class OrderLines:
    """The lines of one order (or the lines without an order id a document starts with), and how
    many data rows of the document are handled once they are: skip that many to resume after
    them."""

    lines: list[ReportLine]
    rows_done: int


class _Unreadable(ValueError):
    """A cell that does not read as its column's type; the message names the column only."""


_TEXT_FIELDS = {
    "merchant_order_id": "merchant-order-id",
    "fulfillment_channel": "fulfillment-channel",
    "sales_channel": "sales-channel",
    "ship_service_level": "ship-service-level",
    "product_name": "product-name",
    "sku": "sku",
    "asin": "asin",
    "item_status": "item-status",
    "currency": "currency",
    "ship_city": "ship-city",
    "ship_state": "ship-state",
    "ship_postal_code": "ship-postal-code",
    "ship_country": "ship-country",
    "promotion_ids": "promotion-ids",
    "purchase_order_number": "purchase-order-number",
    "price_designation": "price-designation",
}
_MONEY_FIELDS = {
    "item_price": "item-price",
    "item_tax": "item-tax",
    "shipping_price": "shipping-price",
    "shipping_tax": "shipping-tax",
    "gift_wrap_price": "gift-wrap-price",
    "gift_wrap_tax": "gift-wrap-tax",
    "item_promotion_discount": "item-promotion-discount",
    "ship_promotion_discount": "ship-promotion-discount",
}


_CACHED = 4096
"""Distinct cells a reader remembers the value of, per kind, at most (then it starts afresh):
a report repeats its prices and its orders' dates from line to line, and reading a cell once
is a fraction of the cost of reading it again. Values are immutable, so they are shared."""


class _RowReader:
    """Reads lines of one document: the header's column positions are looked up once, and the
    cells that repeat (prices, dates) read once each."""

    def __init__(self, header: str) -> None:
        self.names = tuple(name.strip().lower() for name in header.split("\t"))
        index = {name: i for i, name in enumerate(self.names)}
        missing = [c for c in REQUIRED_COLUMNS if c not in index]
        if missing:
            raise AmazonMalformedResponse(f"order report without column(s) {', '.join(missing)}")
        self._order_id = index["amazon-order-id"]
        self._width = len(self.names)
        # Every line is cut to the header's width plus one empty cell, the one a column the
        # document lacks reads (so a short line reads as if padded with empty cells).
        self._padding = [""] * (self._width + 1)
        absent = self._width
        columns = [_FIELD_COLUMNS[field.name] for field in fields(OrderReportRow)]
        self._positions = [index.get(column, absent) for column in columns]
        self._money = [(slot, columns[slot]) for slot in _MONEY_SLOTS]
        self._prices: dict[str, Decimal] = {}
        self._moments: dict[str, datetime] = {}

    def line(self, text: str, index: int, number: int) -> ReportLine:
        cells = text.split("\t")
        order_id = cells[self._order_id].strip() if self._order_id < len(cells) else ""
        try:
            row = self._row(cells)
        except _Unreadable as problem:
            return ReportLine(
                index, number, order_id or None, None, str(problem), tuple(cells), self.names
            )
        return ReportLine(index, number, row.amazon_order_id, row, None, tuple(cells), self.names)

    def _row(self, cells: list[str]) -> OrderReportRow:
        padded = cells[: self._width]
        padded.extend(self._padding[len(padded) :])
        row: list[Any] = [padded[i].strip() or None for i in self._positions]
        # Checked in the fields' order: the reason names the first field that cannot be read.
        if row[_AMAZON_ORDER_ID] is None:
            raise _Unreadable("amazon-order-id is empty")
        row[_PURCHASE_DATE] = self._moment(row[_PURCHASE_DATE], "purchase-date")
        row[_LAST_UPDATED_DATE] = self._moment(row[_LAST_UPDATED_DATE], "last-updated-date")
        if row[_ORDER_STATUS] is None:
            raise _Unreadable("order-status is empty")
        quantity = row[_QUANTITY]
        if quantity is None:
            raise _Unreadable("quantity is empty")
        try:
            row[_QUANTITY] = int(quantity)
        except ValueError:
            raise _Unreadable("quantity is unreadable") from None
        prices = self._prices
        for slot, column in self._money:
            text = row[slot]
            if text is not None:
                price = prices.get(text)
                if price is None:
                    price = _money(text, column)
                    _remember(prices, text, price)
                row[slot] = price
        flag = row[_IS_BUSINESS_ORDER]
        if flag is not None:
            row[_IS_BUSINESS_ORDER] = flag.lower() == "true"
        return OrderReportRow(*row)

    def _moment(self, text: str | None, column: str) -> datetime:
        if text is None:
            raise _Unreadable(f"{column} is empty")
        moment = self._moments.get(text)
        if moment is None:
            try:
                moment = parse_amazon_time(text)
            except (ValueError, InvalidOperation, OverflowError):
                raise _Unreadable(f"{column} is unreadable") from None
            _remember(self._moments, text, moment)
        return moment


def _remember(cache: dict[str, Any], text: str, value: Any) -> None:
    if len(cache) >= _CACHED:
        cache.clear()
    cache[text] = value


def _money(value: str, column: str) -> Decimal:
    try:
        return Decimal(value.replace(",", ""))
    except (ValueError, InvalidOperation, OverflowError):
        raise _Unreadable(f"{column} is unreadable") from None


_FIELD_COLUMNS: dict[str, str] = {
    "amazon_order_id": "amazon-order-id",
    "purchase_date": "purchase-date",
    "last_updated_date": "last-updated-date",
    "order_status": "order-status",
    "quantity": "quantity",
    "is_business_order": "is-business-order",
    **_TEXT_FIELDS,
    **_MONEY_FIELDS,
}
"""Each field of ``OrderReportRow``: its column."""
_SLOTS = {field.name: slot for slot, field in enumerate(fields(OrderReportRow))}
_PURCHASE_DATE, _LAST_UPDATED_DATE = _SLOTS["purchase_date"], _SLOTS["last_updated_date"]
_QUANTITY, _IS_BUSINESS_ORDER = _SLOTS["quantity"], _SLOTS["is_business_order"]
_MONEY_SLOTS = [_SLOTS[name] for name in _MONEY_FIELDS]
_AMAZON_ORDER_ID, _ORDER_STATUS = _SLOTS["amazon_order_id"], _SLOTS["order_status"]


async def lines(chunks: AsyncIterable[bytes], encoding: str = "utf-8") -> AsyncIterator[str]:
    """Text lines (without their ``\\r\\n``) of a byte stream, decoded incrementally."""
    async for block in _line_blocks(chunks, encoding):
        for line in block:
            yield line


async def _line_blocks(
    chunks: AsyncIterable[bytes], encoding: str = "utf-8"
) -> AsyncIterator[list[str]]:
    """The lines of a byte stream, the complete ones of each chunk together: a reader loops
    over a chunk's lines without an await per line."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    pending = ""
    async for chunk in chunks:
        pending += decoder.decode(chunk)
        *complete, pending = pending.split("\n")
        if complete:
            yield [line.rstrip("\r") for line in complete]
    pending += decoder.decode(b"", final=True)
    if pending.rstrip("\r"):
        yield [pending.rstrip("\r")]


async def parse_report_lines(
    chunks: AsyncIterable[bytes], encoding: str = "utf-8", *, skip_rows: int = 0
) -> AsyncGenerator[ReportLine, None]:
    """Every data line of the document, read or not, after the first ``skip_rows`` (which are
    counted, not parsed). A document without the required columns is
    ``AmazonMalformedResponse``."""
    reader: _RowReader | None = None
    number = index = 0
    async for block in _line_blocks(chunks, encoding):
        for text in block:
            number += 1
            if reader is None:
                reader = _RowReader(text.lstrip("\ufeff"))
            elif text.strip():
                if index >= skip_rows:
                    yield reader.line(text, index, number)
                index += 1


async def parse_order_rows(
    chunks: AsyncIterable[bytes], encoding: str = "utf-8"
) -> AsyncIterator[OrderReportRow]:
    """The document's rows, for a caller that wants all or nothing: a line that cannot be read
    is ``AmazonMalformedResponse`` naming its line number (never its content)."""
    async with aclosing(parse_report_lines(chunks, encoding)) as report:
        async for line in report:
            if line.row is None:
                raise AmazonMalformedResponse(f"order report line {line.number} is unreadable")
            yield line.row


async def group_by_order(
    report: AsyncIterable[ReportLine],
) -> AsyncGenerator[OrderLines, None]:
    """Consecutive lines of one order, together (Amazon writes an order's lines in a run), with
    the data rows handled once they are. A line without an order id stays with the lines around
    it (most likely one of them whose id was lost): its order is then set aside whole, and every
    group ends at a distinct row, so resuming after any group loses and repeats nothing."""
    group: list[ReportLine] = []
    order_id: str | None = None
    async for line in report:
        if group and line.order_id is not None and line.order_id != order_id:
            yield OrderLines(group, line.index)
            group = []
        if not group or order_id is None:
            order_id = line.order_id
        group.append(line)
    if group:
        yield OrderLines(group, group[-1].index + 1)

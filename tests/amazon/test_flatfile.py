"""The order flat file parsed as a stream, whatever the chunk boundaries, and its download."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from keybuzz.amazon import normalize
from keybuzz.amazon.client import SpApiClient
from keybuzz.amazon.errors import AmazonMalformedResponse
from keybuzz.amazon.flatfile import group_by_order, lines, parse_order_rows, parse_report_lines
from keybuzz.amazon.models_reports import ReportDocument
from keybuzz.orders.records import OrderRecord, RejectedOrder

HEADER = (
    "amazon-order-id\tmerchant-order-id\tpurchase-date\tlast-updated-date\torder-status\t"
    "fulfillment-channel\tsales-channel\tproduct-name\tsku\tasin\tquantity\tcurrency\t"
    "item-price\tship-city\tship-country\tis-business-order\tsomething-new"
)
ROWS = [
    "403-1111111-1111111\tKB-1\t2026-05-01T10:00:00+00:00\t2026-05-02T09:00:00+00:00\tShipped\t"
    "Amazon\tAmazon.fr\tPlaid en laine mérinos\tKBZ-1\tB0AAAAAAAA\t2\tEUR\t85.98\tLyon\tFR\t"
    "false\tx",
    "403-1111111-1111111\tKB-1\t2026-05-01T10:00:00+00:00\t2026-05-02T09:00:00+00:00\tShipped\t"
    "Amazon\tAmazon.fr\tTasse à café\tKBZ-2\tB0BBBBBBBB\t1\tEUR\t9.50\tLyon\tFR\tfalse\tx",
    "403-2222222-2222222\t\t2026-05-03T10:00:00+00:00\t2026-05-03T10:05:00+00:00\tPending\t"
    "Merchant\tAmazon.fr\tBougie\tKBZ-3\tB0CCCCCCCC\t1\tEUR\t\t\t\ttrue\tx",
]
DOCUMENT = ("\ufeff" + HEADER + "\r\n" + "\r\n".join(ROWS) + "\r\n").encode("utf-8")


async def in_chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.parametrize("size", [1, 7, 64, 10_000])
async def test_rows_whatever_the_chunk_size(size: int) -> None:
    rows = [row async for row in parse_order_rows(in_chunks(DOCUMENT, size))]

    assert [r.amazon_order_id for r in rows] == [
        "403-1111111-1111111",
        "403-1111111-1111111",
        "403-2222222-2222222",
    ]
    first, _, pending = rows
    assert first.product_name == "Plaid en laine mérinos"
    assert (first.quantity, first.item_price, first.currency) == (2, Decimal("85.98"), "EUR")
    assert first.purchase_date == datetime(2026, 5, 1, 10, tzinfo=UTC)
    assert (first.merchant_order_id, first.is_business_order) == ("KB-1", False)
    assert first.ship_service_level is None
    assert (pending.merchant_order_id, pending.item_price, pending.ship_city) == (None, None, None)
    assert pending.is_business_order is True


async def test_lines_keep_the_last_one_without_newline() -> None:
    found = [line async for line in lines(in_chunks(b"a\r\nb\n\nc", 2))]

    assert found == ["a", "b", "", "c"]


async def test_rows_grouped_by_order() -> None:
    groups = [g async for g in group_by_order(parse_report_lines(in_chunks(DOCUMENT, 50)))]

    assert [[line.row.sku for line in g.lines if line.row] for g in groups] == [
        ["KBZ-1", "KBZ-2"],
        ["KBZ-3"],
    ]
    # Rows handled once each order is: skip that many to resume after it.
    assert [g.rows_done for g in groups] == [2, 3]


async def test_a_report_without_a_required_column_is_malformed() -> None:
    document = HEADER.replace("order-status", "status") + "\n" + ROWS[0] + "\n"

    with pytest.raises(AmazonMalformedResponse, match="without column"):
        async for _ in parse_order_rows(in_chunks(document.encode(), 100)):
            pass


async def test_an_unreadable_line_is_named_by_number_not_content() -> None:
    broken = ROWS[2].replace("\t1\tEUR", "\tone\tEUR")
    document = f"{HEADER}\n{ROWS[0]}\n{broken}\n".encode()

    with pytest.raises(AmazonMalformedResponse) as caught:
        async for _ in parse_order_rows(in_chunks(document, 100)):
            pass

    assert str(caught.value) == "order report line 3 is unreadable"


DOC_URL = "https://tortuga-prod-eu.s3.test/doc-1?X-Amz-Signature=abc"


class Streamed(httpx.AsyncByteStream):
    """A body that arrives in pieces, as from a socket."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in in_chunks(self.data, 1000):
            yield chunk


def document(compression: str | None) -> ReportDocument:
    return ReportDocument(
        report_document_id="doc-1", url=DOC_URL, compression_algorithm=compression
    )


async def download(client: SpApiClient, compression: str | None) -> bytes:
    return b"".join(
        [c async for c in client.reports.download_report_document(document(compression))]
    )


async def test_download_gunzips_several_members_without_sending_a_token(
    mock_connect: Callable[[Callable[[httpx.Request], httpx.Response]], SpApiClient],
) -> None:
    body = gzip.compress(DOCUMENT[:100]) + gzip.compress(DOCUMENT[100:])

    def handler(request: httpx.Request) -> httpx.Response:
        assert str(request.url) == DOC_URL
        assert "x-amz-access-token" not in request.headers
        return httpx.Response(200, stream=Streamed(body))

    assert await download(mock_connect(handler), "GZIP") == DOCUMENT


async def test_download_of_an_uncompressed_document(
    mock_connect: Callable[[Callable[[httpx.Request], httpx.Response]], SpApiClient],
) -> None:
    client = mock_connect(lambda request: httpx.Response(200, stream=Streamed(DOCUMENT)))

    assert await download(client, None) == DOCUMENT


async def test_a_truncated_gzip_is_malformed(
    mock_connect: Callable[[Callable[[httpx.Request], httpx.Response]], SpApiClient],
) -> None:
    body = gzip.compress(DOCUMENT)[:-20]
    client = mock_connect(lambda request: httpx.Response(200, stream=Streamed(body)))

    with pytest.raises(AmazonMalformedResponse, match="middle of its gzip"):
        await download(client, "GZIP")


def report(*rows: str) -> bytes:
    return (HEADER + "\n" + "\n".join(rows) + "\n").encode()


async def report_items(document: bytes, skip_rows: int = 0) -> list[tuple[Any, int]]:
    """Each order of the document (record or rejection) with the rows done after it."""
    lines_read = parse_report_lines(in_chunks(document, 37), skip_rows=skip_rows)
    return [
        (normalize.from_report_lines(group.lines), group.rows_done)
        async for group in group_by_order(lines_read)
    ]


async def test_unreadable_lines_are_set_aside_and_the_stream_goes_on() -> None:
    no_id = ROWS[0].replace("403-1111111-1111111", "", 1)
    bad_quantity = ROWS[1].replace("\t1\tEUR", "\tun\tEUR")
    bad_date = ROWS[2].replace("2026-05-03T10:00:00+00:00", "3 mai", 1)
    teleported = ROWS[2].replace("2222222", "3333333").replace("Pending", "Teleported")
    fine = ROWS[2].replace("2222222", "5555555")
    document = report(no_id, ROWS[0], bad_quantity, bad_date, teleported, ROWS[2], no_id, fine)

    items = await report_items(document)

    orders = [order for order, _ in items]
    assert [type(order).__name__ for order in orders] == [
        "RejectedOrder",  # a first line without an order id
        "RejectedOrder",  # 403-1111111-1111111: one of its two lines unreadable
        "RejectedOrder",  # 403-2222222-2222222 with a date that is not one
        "RejectedOrder",  # 403-3333333-3333333, status unknown
        "RejectedOrder",  # 403-2222222-2222222 again, followed by a line without an id
        "OrderRecord",  # 403-5555555-5555555
    ]
    first, two_lines, bad_day, unknown, interrupted, good = orders
    assert isinstance(first, RejectedOrder)
    assert (first.external_order_id, first.reason) == (
        None,
        "order report line 2: amazon-order-id is empty",
    )
    assert first.payload["amazon-order-id"] == ""
    assert isinstance(two_lines, RejectedOrder)
    assert two_lines.external_order_id == "403-1111111-1111111"
    assert two_lines.reason == (
        "order report line 4: quantity is unreadable (1 other line(s) of the order set aside "
        "with it)"
    )
    assert two_lines.payload["quantity"] == "un"
    assert two_lines.payload["product-name"] == "Tasse à café"
    assert set(two_lines.payload) == set(HEADER.split("\t"))
    assert isinstance(bad_day, RejectedOrder)
    assert bad_day.reason == "order report line 5: purchase-date is unreadable"
    assert bad_day.payload["purchase-date"] == "3 mai"
    assert isinstance(unknown, RejectedOrder)
    assert unknown.reason == "order 403-3333333-3333333: unknown order status 'Teleported'"
    assert unknown.payload["order-status"] == "Teleported"
    assert isinstance(interrupted, RejectedOrder)
    assert interrupted.external_order_id == "403-2222222-2222222"
    assert interrupted.reason.startswith("order report line 8: amazon-order-id is empty")
    assert all(o.source == "report" and o.marketplace == "amazon" for o in orders[:5])
    assert isinstance(good, OrderRecord)
    assert (good.external_order_id, good.enriched) == ("403-5555555-5555555", False)
    # Every order ends at its own row: a resume after any of them misses and repeats nothing.
    assert [done for _, done in items] == [1, 3, 4, 5, 7, 8]


async def test_reading_resumes_after_the_rows_done_of_any_order() -> None:
    no_id = ROWS[2].replace("403-2222222-2222222", "", 1)
    document = report(ROWS[0], no_id, ROWS[1], ROWS[2], ROWS[0].replace("1111111", "4444444"))
    items = await report_items(document)
    assert [done for _, done in items] == [3, 4, 5]

    for index, (_, done) in enumerate(items):
        assert await report_items(document, skip_rows=done) == items[index + 1 :]
    assert await report_items(document, skip_rows=0) == items


class BreaksOff(httpx.AsyncByteStream):
    """A body whose connection drops after ``size`` bytes."""

    def __init__(self, data: bytes, size: int) -> None:
        self.data = data[:size]

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in in_chunks(self.data, 1000):
            yield chunk
        raise httpx.ReadError("connection reset by peer")


async def test_a_download_broken_off_goes_on_after_the_last_order_yielded(
    mock_connect: Callable[[Callable[[httpx.Request], httpx.Response]], SpApiClient],
) -> None:
    rows = [
        ROWS[line % 2].replace("1111111-1111111", f"{order:07d}-1111111")
        for order in range(400)
        for line in range(2)
    ]
    body = report(*rows)
    downloads: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        downloads.append(len(downloads))
        if len(downloads) == 1:
            return httpx.Response(200, stream=BreaksOff(body, len(body) // 2))
        return httpx.Response(200, stream=Streamed(body))

    client = mock_connect(handler)

    items = [
        (item.order.external_order_id, item.rows_done, len(downloads))
        async for item in client.reports.report_records(document(None))
    ]

    assert [order_id for order_id, _, _ in items] == [f"403-{n:07d}-1111111" for n in range(400)]
    assert [done for _, done, _ in items] == list(range(2, 801, 2))
    assert len(downloads) == 2
    # Some orders came from the first download, the rest from the second, none twice.
    assert 0 < sum(1 for *_, download in items if download == 1) < 400

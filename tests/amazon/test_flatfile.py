"""The order flat file parsed as a stream, whatever the chunk boundaries, and its download."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from keybuzz.amazon.client import SpApiClient
from keybuzz.amazon.errors import AmazonMalformedResponse
from keybuzz.amazon.flatfile import group_by_order, lines, parse_order_rows
from keybuzz.amazon.models_reports import ReportDocument

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
    groups = [g async for g in group_by_order(parse_order_rows(in_chunks(DOCUMENT, 50)))]

    assert [[r.sku for r in group] for group in groups] == [["KBZ-1", "KBZ-2"], ["KBZ-3"]]


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

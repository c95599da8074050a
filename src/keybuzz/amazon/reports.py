"""Reports API 2021-06-30: create, poll, download (spapi.md §8).

The document URL is pre-signed (no access token goes there), lives five minutes and usually
serves gzip: it is streamed and decompressed chunk by chunk, so a 500 MB report never sits in
memory. A report that ends ``CANCELLED`` has no data; ``FATAL`` raises ``AmazonReportFailed``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from keybuzz.amazon.errors import (
    AmazonMalformedResponse,
    AmazonReportFailed,
    AmazonUnavailable,
)
from keybuzz.amazon.flatfile import OrderReportRow, parse_order_rows
from keybuzz.amazon.models_reports import CreateReportResponse, Report, ReportDocument
from keybuzz.amazon.operations import CREATE_REPORT, GET_REPORT, GET_REPORT_DOCUMENT
from keybuzz.amazon.retry import TRANSIENT_ERRORS
from keybuzz.amazon.transport import SpApiTransport
from keybuzz.amazon.windows import amazon_time

logger = logging.getLogger("keybuzz.amazon")

ORDERS_BY_ORDER_DATE = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"
ORDERS_BY_LAST_UPDATE = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL"
# Amazon refuses order reports over 30 days ("Date range exceeded").
MAX_REPORT_RANGE = timedelta(days=30)
DONE, CANCELLED, FATAL = "DONE", "CANCELLED", "FATAL"
CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class OrderReportQuery:
    """The order reports to ask for: their type, marketplaces and range (of any length)."""

    marketplace_ids: Sequence[str]
    data_start_time: datetime
    data_end_time: datetime
    report_type: str = ORDERS_BY_ORDER_DATE


class ReportsApi:
    def __init__(self, transport: SpApiTransport, http: httpx.AsyncClient, *, timeout: float):
        self._transport = transport
        self._http = http
        self._timeout = httpx.Timeout(timeout)

    async def create_report(
        self,
        *,
        report_type: str,
        marketplace_ids: Sequence[str],
        data_start_time: datetime | None = None,
        data_end_time: datetime | None = None,
        report_options: Mapping[str, str] | None = None,
    ) -> str:
        """The new report's id."""
        body: dict[str, object] = {
            "reportType": report_type,
            "marketplaceIds": list(marketplace_ids),
        }
        if data_start_time is not None:
            body["dataStartTime"] = amazon_time(data_start_time)
        if data_end_time is not None:
            body["dataEndTime"] = amazon_time(data_end_time)
        if report_options:
            body["reportOptions"] = dict(report_options)
        response = await self._transport.call(CREATE_REPORT, CreateReportResponse, json_body=body)
        return response.report_id

    async def get_report(self, report_id: str) -> Report:
        return await self._transport.call(GET_REPORT, Report, path_params={"reportId": report_id})

    async def wait_for_report(
        self,
        report_id: str,
        *,
        first_poll: float = 2.0,
        max_poll: float = 60.0,
        timeout: float = 3600.0,
    ) -> Report:
        """Poll until ``DONE`` or ``CANCELLED`` (no data), the wait growing from ``first_poll``
        to ``max_poll`` seconds; ``FATAL`` raises ``AmazonReportFailed``."""
        deadline = time.monotonic() + timeout
        wait = first_poll
        while True:
            report = await self.get_report(report_id)
            if report.processing_status in (DONE, CANCELLED):
                return report
            if report.processing_status == FATAL:
                raise AmazonReportFailed(f"report {report_id} ({report.report_type}) ended FATAL")
            if time.monotonic() + wait > deadline:
                raise AmazonUnavailable(f"report {report_id} not done after {timeout:.0f} s")
            await asyncio.sleep(wait)
            wait = min(max_poll, wait * 1.5)

    async def get_report_document(self, report_document_id: str) -> ReportDocument:
        return await self._transport.call(
            GET_REPORT_DOCUMENT,
            ReportDocument,
            path_params={"reportDocumentId": report_document_id},
        )

    async def download_report_document(self, document: ReportDocument) -> AsyncIterator[bytes]:
        """The document's content, decompressed, in chunks. An expired URL (five minutes) is
        renewed once with a fresh getReportDocument."""
        for renewal in (False, True):
            if renewal:
                document = await self.get_report_document(document.report_document_id)
            async with self._http.stream(
                "GET", document.url, timeout=self._timeout, auth=None
            ) as response:
                if response.status_code == 403 and not renewal:
                    logger.info("report document URL expired or refused; asking a new one")
                    continue
                if response.status_code != 200:
                    raise AmazonUnavailable(
                        f"report document {document.report_document_id}: "
                        f"HTTP {response.status_code}"
                    )
                if (document.compression_algorithm or "").upper() == "GZIP":
                    chunks = _gunzip(response.aiter_raw(CHUNK))
                else:
                    chunks = response.aiter_bytes(CHUNK)
                try:
                    async for chunk in chunks:
                        yield chunk
                except TRANSIENT_ERRORS as error:
                    raise AmazonUnavailable(
                        f"report document {document.report_document_id}: "
                        f"{type(error).__name__} while downloading"
                    ) from None
                return

    async def order_report_rows(
        self, query: OrderReportQuery, *, first_poll: float = 2.0
    ) -> AsyncIterator[OrderReportRow]:
        """Every row of an order flat-file report over any range, requested in ≤ 30-day
        slices one after another, each streamed as it downloads."""
        start = query.data_start_time
        while start < query.data_end_time:
            end = min(query.data_end_time, start + MAX_REPORT_RANGE)
            report_id = await self.create_report(
                report_type=query.report_type,
                marketplace_ids=query.marketplace_ids,
                data_start_time=start,
                data_end_time=end,
            )
            report = await self.wait_for_report(report_id, first_poll=first_poll)
            if report.processing_status == DONE and report.report_document_id:
                document = await self.get_report_document(report.report_document_id)
                async for row in parse_order_rows(self.download_report_document(document)):
                    yield row
            start = end


async def _gunzip(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Gzip (one or several members) to bytes, ``CHUNK`` bytes of output at most per step."""
    wbits = 16 + zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    midway = False
    try:
        async for chunk in chunks:
            data = chunk
            while data:
                midway = True
                output = inflater.decompress(data, CHUNK)
                if output:
                    yield output
                if inflater.eof:
                    data, midway = inflater.unused_data, False
                    inflater = zlib.decompressobj(wbits)
                else:
                    data = inflater.unconsumed_tail
        tail = inflater.flush()
    except zlib.error:
        raise AmazonMalformedResponse("report document is not valid gzip") from None
    if tail:
        yield tail
    if midway and not inflater.eof:
        raise AmazonMalformedResponse("report document ends in the middle of its gzip stream")

"""Reports API 2021-06-30: create, poll, download (spapi.md §8).

The document URL is pre-signed (no access token goes there), lives five minutes and usually
serves gzip: it is streamed and decompressed chunk by chunk, so a 500 MB report never sits in
memory. A report that ends ``CANCELLED`` has no data; ``FATAL`` raises ``AmazonReportFailed``.

The order reports' flow comes as separate calls a job can spread over short steps, never
holding a worker while Amazon generates a report:

    ids = await reports.request_reports(query.slices())    # all createReport calls at once
    state = await reports.report_state(ids[0])             # one getReport; poll it later again
    async for item in reports.report_records(state.report_document_id, skip_rows=done):
        ...  # item.order: OrderRecord or RejectedOrder; checkpoint item.rows_done

``rows_done`` counts the document's data rows handled once ``item`` is: a later run (any
process) passes it back as ``skip_rows`` and goes on with the next order, the same document
being the same bytes. A download broken off is resumed the same way, within the call.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import zlib
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from keybuzz.amazon import normalize
from keybuzz.amazon.concurrency import gather_or_cancel
from keybuzz.amazon.errors import (
    AmazonMalformedResponse,
    AmazonReportFailed,
    AmazonUnavailable,
)
from keybuzz.amazon.flatfile import group_by_order, parse_report_lines
from keybuzz.amazon.models_reports import CreateReportResponse, Report, ReportDocument
from keybuzz.amazon.operations import CREATE_REPORT, GET_REPORT, GET_REPORT_DOCUMENT
from keybuzz.amazon.retry import TRANSIENT_ERRORS
from keybuzz.amazon.transport import SpApiTransport
from keybuzz.amazon.windows import amazon_time
from keybuzz.orders.records import OrderRecord, RejectedOrder

logger = logging.getLogger("keybuzz.amazon")

ORDERS_BY_ORDER_DATE = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"
ORDERS_BY_LAST_UPDATE = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL"
# Amazon refuses order reports over 30 days ("Date range exceeded").
MAX_REPORT_RANGE = timedelta(days=30)
DONE, CANCELLED, FATAL = "DONE", "CANCELLED", "FATAL"
CHUNK = 64 * 1024
# A document URL lives five minutes: one older than this is asked again before a new download.
URL_FRESH_FOR = 240.0


@dataclass(frozen=True, slots=True)
class OrderReportQuery:
    """The order reports to ask for: their type, marketplaces and range (of any length)."""

    marketplace_ids: Sequence[str]
    data_start_time: datetime
    data_end_time: datetime
    report_type: str = ORDERS_BY_ORDER_DATE

    def slices(self) -> list[OrderReportQuery]:
        """The range cut into consecutive reports Amazon accepts (≤ 30 days each)."""
        parts: list[OrderReportQuery] = []
        start = self.data_start_time
        while start < self.data_end_time:
            end = min(self.data_end_time, start + MAX_REPORT_RANGE)
            parts.append(dataclasses.replace(self, data_start_time=start, data_end_time=end))
            start = end
        return parts


@dataclass(frozen=True, slots=True)
class ReportState:
    """Where a report stands: ``IN_QUEUE``, ``IN_PROGRESS``, ``DONE`` or ``CANCELLED``."""

    report_id: str
    processing_status: str
    report_document_id: str | None = None
    """Set once ``DONE``: what ``report_records`` reads."""

    @property
    def finished(self) -> bool:
        """No point asking again: ``DONE``, or ``CANCELLED`` (Amazon had no data)."""
        return self.processing_status in (DONE, CANCELLED)


@dataclass(frozen=True, slots=True)
class ReportRecord:
    """One order of a report document, and the document's data rows handled with it."""

    order: OrderRecord | RejectedOrder
    rows_done: int
    """Pass it back as ``skip_rows`` to go on after this order."""


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

    async def request_reports(self, slices: Sequence[OrderReportQuery]) -> list[str]:
        """Create a report per slice (each ≤ 30 days, e.g. ``query.slices()``), all at once
        within createReport's burst; their ids in slice order. If one creation fails the
        others are cancelled and the error raised (reports already created are just unused)."""
        for part in slices:
            if part.data_end_time - part.data_start_time > MAX_REPORT_RANGE:
                raise ValueError("an order report covers at most 30 days: use query.slices()")
        return await gather_or_cancel(
            [
                self.create_report(
                    report_type=part.report_type,
                    marketplace_ids=part.marketplace_ids,
                    data_start_time=part.data_start_time,
                    data_end_time=part.data_end_time,
                )
                for part in slices
            ]
        )

    async def report_state(self, report_id: str) -> ReportState:
        """One look at the report (getReport). ``FATAL`` raises ``AmazonReportFailed``."""
        report = await self.get_report(report_id)
        if report.processing_status == FATAL:
            raise AmazonReportFailed(f"report {report_id} ({report.report_type}) ended FATAL")
        document_id = report.report_document_id if report.processing_status == DONE else None
        return ReportState(report_id, report.processing_status, document_id)

    async def wait_for_report(
        self,
        report_id: str,
        *,
        first_poll: float = 2.0,
        max_poll: float = 60.0,
        timeout: float = 3600.0,
    ) -> ReportState:
        """Poll until ``DONE`` or ``CANCELLED`` (no data), the wait growing from ``first_poll``
        to ``max_poll`` seconds; ``FATAL`` raises ``AmazonReportFailed``. For callers that may
        wait; a job step asks ``report_state`` and comes back later instead."""
        deadline = time.monotonic() + timeout
        wait = first_poll
        while True:
            state = await self.report_state(report_id)
            if state.finished:
                return state
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

    async def download_report_document(
        self, document: ReportDocument
    ) -> AsyncGenerator[bytes, None]:
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
                gzipped = (document.compression_algorithm or "").upper() == "GZIP"
                try:
                    async with aclosing(_content(response, gzipped)) as chunks:
                        async for chunk in chunks:
                            yield chunk
                except TRANSIENT_ERRORS as error:
                    raise AmazonUnavailable(
                        f"report document {document.report_document_id}: "
                        f"{type(error).__name__} while downloading"
                    ) from None
                return

    async def report_records(
        self, document: str | ReportDocument, *, skip_rows: int = 0
    ) -> AsyncGenerator[ReportRecord, None]:
        """The orders of an order report document, one at a time, after its first
        ``skip_rows`` data rows: each an ``OrderRecord`` (its rows grouped) or a
        ``RejectedOrder`` (a line that cannot be read, an unknown status), with the rows handled
        once it is. ``document`` is a report document id (a getReportDocument call first) or a
        ``ReportDocument`` already fetched (its URL renewed if it expired). The download is
        streamed and decompressed as it comes; if it breaks off, it starts again after the last
        order yielded, within the transport's retry policy."""
        if isinstance(document, str):
            document = await self.get_report_document(document)
        fetched = time.monotonic()
        done = skip_rows
        failures = 0
        while True:
            try:
                async with aclosing(self._records(document, done)) as records:
                    async for record in records:
                        done, failures = record.rows_done, 0
                        yield record
                return
            except AmazonUnavailable as error:
                failures += 1
                policy = self._transport.retry
                if failures >= policy.attempts:
                    raise
                delay = policy.backoff(failures)
                logger.info("%s; resuming after row %d in %.2f s", error, done, delay)
                await asyncio.sleep(delay)
            if time.monotonic() - fetched > URL_FRESH_FOR:
                document = await self.get_report_document(document.report_document_id)
                fetched = time.monotonic()

    async def _records(
        self, document: ReportDocument, skip_rows: int
    ) -> AsyncGenerator[ReportRecord, None]:
        chunks = self.download_report_document(document)
        async with (
            aclosing(chunks),
            aclosing(parse_report_lines(chunks, skip_rows=skip_rows)) as lines,
            aclosing(group_by_order(lines)) as orders,
        ):
            async for group in orders:
                yield ReportRecord(normalize.from_report_lines(group.lines), group.rows_done)


async def _content(response: httpx.Response, gzipped: bool) -> AsyncGenerator[bytes, None]:
    if gzipped:
        async with aclosing(_gunzip(response.aiter_raw(CHUNK))) as inflated:
            async for chunk in inflated:
                yield chunk
    else:
        async for chunk in response.aiter_bytes(CHUNK):
            yield chunk


async def _gunzip(chunks: AsyncIterator[bytes]) -> AsyncGenerator[bytes, None]:
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

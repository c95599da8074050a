"""Report jobs and documents (Reports API 2021-06-30) with pre-signed, expiring download URLs.

A report snapshots its rows when it is requested, then walks IN_QUEUE -> IN_PROGRESS -> DONE
over ``generation_seconds`` of simulator time; CANCELLED when it has no rows, FATAL with an
error document when the range exceeds 30 days.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlencode

from keybuzz.simulator import flatfile
from keybuzz.simulator.clock import iso
from keybuzz.simulator.orderbook import DateFamily, OrderBook, OrderFilter
from keybuzz.simulator.records import Order

ORDER_REPORT_TYPES = {
    "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL": DateFamily.CREATED,
    "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL": DateFamily.UPDATED,
}
MAX_RANGE_SECONDS = 30 * 86400
RANGE_EXCEEDED = "Date range exceeded. Report can be requested only upto 30 days"
URL_LIFETIME = 300
DOCUMENT_PATH = "/report-documents"


class Outcome(StrEnum):
    DONE = "DONE"
    CANCELLED = "CANCELLED"
    FATAL = "FATAL"


@dataclass(slots=True)
class Document:
    document_id: str
    seller_id: str
    content: bytes


@dataclass(slots=True)
class Report:
    report_id: str
    seller_id: str
    report_type: str
    marketplace_ids: list[str]
    data_start: int
    data_end: int
    created: int
    queued_until: float
    ready_at: float
    outcome: Outcome
    document_id: str | None

    def view(self, now: float) -> dict[str, Any]:
        body: dict[str, Any] = {
            "reportId": self.report_id,
            "reportType": self.report_type,
            "dataStartTime": iso(self.data_start),
            "dataEndTime": iso(self.data_end),
            "marketplaceIds": self.marketplace_ids,
            "createdTime": iso(self.created),
            "processingStatus": "IN_QUEUE",
        }
        if now < self.queued_until:
            return body
        body["processingStartTime"] = iso(int(self.queued_until))
        if now < self.ready_at:
            body["processingStatus"] = "IN_PROGRESS"
            return body
        body["processingStatus"] = self.outcome.value
        body["processingEndTime"] = iso(int(self.ready_at))
        if self.document_id is not None:
            body["reportDocumentId"] = self.document_id
        return body

    def is_ready(self, now: float) -> bool:
        return now >= self.ready_at


def report_rows(
    book: OrderBook, family: DateFamily, start: int, end: int, marketplaces: list[str], now: int
) -> list[Order]:
    page = book.page(family, start, end, OrderFilter(frozenset(marketplaces)), now, len(book) + 1)
    return page.orders


class ReportStore:
    def __init__(self) -> None:
        self._reports: dict[str, Report] = {}
        self._documents: dict[str, Document] = {}
        self._key = secrets.token_bytes(32)

    def create(
        self,
        *,
        seller_id: str,
        report_type: str,
        marketplace_ids: list[str],
        start: int,
        end: int,
        orders: list[Order] | None,
        now: float,
        generation_seconds: float,
        break_first_row: bool = False,
    ) -> Report:
        """``orders`` is None when the range is too wide: the report will end FATAL.
        ``break_first_row``: the document's first line gets an unreadable purchase date (the
        ``malformed_order`` fault)."""
        if orders is None:
            outcome, content = Outcome.FATAL, RANGE_EXCEEDED + "\n"
        elif not orders:
            outcome, content = Outcome.CANCELLED, None
        else:
            content = flatfile.render(orders, int(now), break_first_row=break_first_row)
            outcome = Outcome.DONE
        document_id = None
        if content is not None:
            document_id = f"amzn1.spdoc.1.4.eu.{uuid.uuid4()}.T{secrets.randbelow(10**14)}"
            compressed = gzip.compress(content.encode("utf-8"), mtime=0)
            self._documents[document_id] = Document(document_id, seller_id, compressed)
        report = Report(
            report_id=str(50_000_000_000 + secrets.randbelow(10**10)),
            seller_id=seller_id,
            report_type=report_type,
            marketplace_ids=marketplace_ids,
            data_start=start,
            data_end=end,
            created=int(now),
            queued_until=now + generation_seconds / 4,
            ready_at=now + generation_seconds,
            outcome=outcome,
            document_id=document_id,
        )
        self._reports[report.report_id] = report
        return report

    def get(self, seller_id: str, report_id: str) -> Report | None:
        report = self._reports.get(report_id)
        return report if report is not None and report.seller_id == seller_id else None

    def document_for(self, seller_id: str, document_id: str, now: float) -> Document | None:
        """A document the seller may see: it exists and its report has finished."""
        document = self._documents.get(document_id)
        if document is None or document.seller_id != seller_id:
            return None
        finished = any(
            r.document_id == document_id and r.is_ready(now) for r in self._reports.values()
        )
        return document if finished else None

    def signed_url(self, base_url: str, document_id: str, now: int, content_encoding: bool) -> str:
        params = {"X-Amz-Date": str(now), "X-Amz-Expires": str(URL_LIFETIME)}
        if content_encoding:
            params["response-content-encoding"] = "gzip"
        params["X-Amz-Signature"] = self._signature(document_id, params)
        return f"{base_url}{DOCUMENT_PATH}/{document_id}?{urlencode(params)}"

    def download(self, document_id: str, params: dict[str, str], now: float) -> Document | str:
        """The document, or an S3-style error code when the URL is forged or expired."""
        unsigned = {key: value for key, value in params.items() if key != "X-Amz-Signature"}
        expected = self._signature(document_id, unsigned)
        if not hmac.compare_digest(expected, params.get("X-Amz-Signature", "")):
            return "SignatureDoesNotMatch"
        try:
            issued = int(unsigned["X-Amz-Date"])
            lifetime = int(unsigned["X-Amz-Expires"])
        except (KeyError, ValueError):
            return "AuthorizationQueryParametersError"
        if now > issued + lifetime:
            return "AccessDenied"
        document = self._documents.get(document_id)
        return document if document is not None else "NoSuchKey"

    def _signature(self, document_id: str, params: dict[str, str]) -> str:
        message = document_id + "?" + urlencode(sorted(params.items()))
        return hmac.new(self._key, message.encode(), hashlib.sha256).hexdigest()

"""Reports API 2021-06-30 operations: createReport, getReport, getReportDocument."""

from __future__ import annotations

import json
from typing import Any

from keybuzz.simulator.clock import parse_iso
from keybuzz.simulator.errors import invalid_input, not_found
from keybuzz.simulator.faults import FaultKind
from keybuzz.simulator.gateway import Call
from keybuzz.simulator.orderbook import DateFamily
from keybuzz.simulator.reports import (
    MAX_RANGE_SECONDS,
    ORDER_REPORT_TYPES,
    report_rows,
)

Json = dict[str, Any]
MAX_REPORT_MARKETPLACES = 25


def _body(raw: bytes) -> Json:
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        raise invalid_input("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise invalid_input("The request body must be a CreateReportSpecification object.")
    return body


def _marketplaces(call: Call, body: Json) -> list[str]:
    ids = body.get("marketplaceIds")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise invalid_input("marketplaceIds is required: a list of 1 to 25 marketplace ids.")
    if len(ids) > MAX_REPORT_MARKETPLACES:
        raise invalid_input(f"marketplaceIds accepts at most {MAX_REPORT_MARKETPLACES} values.")
    foreign = [i for i in ids if i not in call.seller.marketplaces]
    if foreign:
        raise invalid_input(f"Invalid marketplaceIds: {', '.join(foreign)}.")
    return ids


def _time(body: Json, name: str, now: int) -> int:
    value = body.get(name)
    if value is None:
        return now
    parsed = parse_iso(value) if isinstance(value, str) else None
    if parsed is None:
        raise invalid_input(f"Invalid Date-Time field(s) [{name}].")
    if parsed > now:
        raise invalid_input(f"{name} must be prior to or equal to the current date and time.")
    return int(parsed)


def create_report(call: Call, raw_body: bytes) -> Json:
    body = _body(raw_body)
    report_type = body.get("reportType")
    if not isinstance(report_type, str) or not report_type:
        raise invalid_input("reportType is required.")
    marketplaces = _marketplaces(call, body)
    family = ORDER_REPORT_TYPES.get(report_type)
    if family is None:
        raise invalid_input(f"Invalid reportType: {report_type}.")
    start = _time(body, "dataStartTime", call.now)
    end = _time(body, "dataEndTime", call.now)
    if start > end:
        raise invalid_input("dataStartTime must be before dataEndTime.")
    rows = None
    if end - start <= MAX_RANGE_SECONDS:
        rows = report_rows(call.seller.book, DateFamily(family), start, end, marketplaces, call.now)
    report = call.simulator.reports.create(
        seller_id=call.seller.seller_id,
        report_type=report_type,
        marketplace_ids=marketplaces,
        start=start,
        end=end,
        orders=rows,
        now=call.simulator.clock.time(),
        generation_seconds=call.simulator.settings.report_generation_seconds,
        break_first_row=call.fault.kind is FaultKind.MALFORMED_ORDER,
    )
    return {"reportId": report.report_id}


def get_report(call: Call, report_id: str) -> Json:
    report = call.simulator.reports.get(call.seller.seller_id, report_id)
    if report is None:
        raise not_found(f"Report {report_id} was not found.")
    return report.view(call.simulator.clock.time())


def get_report_document(
    call: Call, document_id: str, base_url: str, content_encoding: bool
) -> Json:
    reports = call.simulator.reports
    document = reports.document_for(call.seller.seller_id, document_id, call.simulator.clock.time())
    if document is None:
        raise not_found(f"Report document {document_id} was not found.")
    return {
        "reportDocumentId": document_id,
        "url": reports.signed_url(base_url, document_id, call.now, content_encoding),
        "compressionAlgorithm": "GZIP",
    }

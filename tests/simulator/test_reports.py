"""Reports API: order flat-file reports from request to gunzipped TSV, and their rules."""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from keybuzz.simulator import SimulatorServer
from keybuzz.simulator.flatfile import COLUMNS
from tests.simulator.conftest import FR, SpApi
from tests.simulator.schemas import assert_matches_model

MODEL = "reports_2021-06-30.json"
REPORTS = "/reports/2021-06-30/reports"
DOCUMENTS = "/reports/2021-06-30/documents"
BY_DATE = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"
BY_UPDATE = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL"


def stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def window(server: SimulatorServer, days: int, ending_days_ago: int = 0) -> dict[str, str]:
    end = datetime.fromtimestamp(server.simulator.now(), UTC) - timedelta(days=ending_days_ago)
    return {"dataStartTime": stamp(end - timedelta(days=days)), "dataEndTime": stamp(end)}


def request_report(api: SpApi, report_type: str = BY_DATE, **body: Any) -> httpx.Response:
    spec = {"reportType": report_type, "marketplaceIds": [FR], **body}
    return api.post(REPORTS, spec)


def report(api: SpApi, report_id: str) -> dict[str, Any]:
    response = api.get(f"{REPORTS}/{report_id}")
    assert response.status_code == 200
    assert_matches_model(MODEL, "getReport", 200, response.json())
    body: dict[str, Any] = response.json()
    return body


def download(api: SpApi, document_id: str) -> list[dict[str, str]]:
    document = api.get(f"{DOCUMENTS}/{document_id}")
    assert_matches_model(MODEL, "getReportDocument", 200, document.json())
    assert document.json()["compressionAlgorithm"] == "GZIP"
    content = api.http.get(document.json()["url"])
    assert content.status_code == 200
    text = gzip.decompress(content.content).decode("utf-8")
    return list(csv.DictReader(io.StringIO(text), delimiter="\t"))


@pytest.fixture
def slow_reports(
    make_server: Callable[..., SimulatorServer], connect: Callable[..., SpApi]
) -> SpApi:
    server = make_server(report_generation_seconds=60, orders=300, days=60)
    return connect(server, server.settings.seller_id)


def test_report_goes_from_queue_to_done_with_one_row_per_item(slow_reports: SpApi) -> None:
    server = slow_reports.server
    created = request_report(slow_reports, **window(server, days=30))
    assert created.status_code == 202
    assert_matches_model(MODEL, "createReport", 202, created.json())
    report_id = created.json()["reportId"]

    statuses = [report(slow_reports, report_id)["processingStatus"]]
    server.simulator.advance_clock(30)
    statuses.append(report(slow_reports, report_id)["processingStatus"])
    server.simulator.advance_clock(31)
    done = report(slow_reports, report_id)
    statuses.append(done["processingStatus"])
    rows = download(slow_reports, done["reportDocumentId"])

    assert statuses == ["IN_QUEUE", "IN_PROGRESS", "DONE"]
    assert list(rows[0]) == list(COLUMNS)
    truth = server.simulator.ground_truth(slow_reports.seller_id)["orders"]
    start = datetime.fromisoformat(window(server, days=30)["dataStartTime"])
    in_range = [o for o in truth if datetime.fromisoformat(o["createdTime"]) >= start]
    assert len(rows) == sum(len(order["orderItems"]) for order in in_range)
    assert {row["amazon-order-id"] for row in rows} == {o["orderId"] for o in in_range}


def test_report_rows_carry_no_buyer_pii(server: SimulatorServer, api: SpApi) -> None:
    report_id = request_report(api, BY_UPDATE, **window(server, days=30)).json()["reportId"]
    rows = download(api, report(api, report_id)["reportDocumentId"])
    truth = {o["orderId"]: o for o in server.simulator.ground_truth(api.seller_id)["orders"]}

    text = "\n".join("\t".join(row.values()) for row in rows)
    for row in rows:
        order = truth[row["amazon-order-id"]]
        assert order["buyer"].get("buyerName", "\x00") not in text
        assert order["buyer"].get("buyerEmail", "\x00") not in text
        address = order.get("recipient", {}).get("deliveryAddress", {})
        assert address.get("addressLine1", "\x00") not in text


def test_document_url_expires_after_five_minutes(slow_reports: SpApi) -> None:
    server = slow_reports.server
    report_id = request_report(slow_reports, **window(server, days=10)).json()["reportId"]
    server.simulator.advance_clock(61)
    document_id = report(slow_reports, report_id)["reportDocumentId"]
    url = slow_reports.get(f"{DOCUMENTS}/{document_id}").json()["url"]

    fresh = slow_reports.http.get(url)
    server.simulator.advance_clock(301)
    stale = slow_reports.http.get(url)
    forged = slow_reports.http.get(url.replace("X-Amz-Expires=300", "X-Amz-Expires=9999"))

    assert fresh.status_code == 200
    assert stale.status_code == forged.status_code == 403
    assert b"<Code>AccessDenied</Code>" in stale.content


def test_content_encoding_url_is_decompressed_by_the_client(
    server: SimulatorServer, api: SpApi
) -> None:
    report_id = request_report(api, **window(server, days=20)).json()["reportId"]
    document_id = report(api, report_id)["reportDocumentId"]
    url = api.get(f"{DOCUMENTS}/{document_id}", enableContentEncodingUrlHeader="true").json()["url"]

    response = api.http.get(url)

    assert response.headers["content-encoding"] == "gzip"
    assert response.text.startswith("amazon-order-id\tmerchant-order-id\t")


def test_empty_report_is_cancelled_without_document(server: SimulatorServer, api: SpApi) -> None:
    body = {"dataStartTime": "2001-01-01T00:00:00Z", "dataEndTime": "2001-01-20T00:00:00Z"}
    report_id = request_report(api, **body).json()["reportId"]

    done = report(api, report_id)

    assert done["processingStatus"] == "CANCELLED"
    assert "reportDocumentId" not in done


def test_more_than_thirty_days_is_fatal_with_an_error_document(
    server: SimulatorServer, api: SpApi
) -> None:
    report_id = request_report(api, **window(server, days=31)).json()["reportId"]

    fatal = report(api, report_id)
    document = api.get(f"{DOCUMENTS}/{fatal['reportDocumentId']}").json()
    text = gzip.decompress(api.http.get(document["url"]).content).decode()

    assert fatal["processingStatus"] == "FATAL"
    assert text.startswith("Date range exceeded. Report can be requested only upto 30 days")


@pytest.mark.parametrize(
    "body",
    [
        {"marketplaceIds": [FR]},
        {"reportType": BY_DATE},
        {"reportType": BY_DATE, "marketplaceIds": []},
        {"reportType": BY_DATE, "marketplaceIds": ["ATVPDKIKX0DER"]},
        {"reportType": "GET_NOT_A_REPORT", "marketplaceIds": [FR]},
        {"reportType": BY_DATE, "marketplaceIds": [FR], "dataStartTime": "2999-01-01T00:00:00Z"},
        {"reportType": BY_DATE, "marketplaceIds": [FR], "dataStartTime": "soon"},
    ],
    ids=[
        "no-type",
        "no-marketplace",
        "empty-marketplaces",
        "foreign-marketplace",
        "unknown-type",
        "future-start",
        "bad-date",
    ],
)
def test_invalid_report_requests(api: SpApi, body: dict[str, Any]) -> None:
    response = api.post(REPORTS, body)

    assert response.status_code == 400
    assert_matches_model(MODEL, "createReport", 400, response.json())


def test_unknown_report_and_document(api: SpApi) -> None:
    report_response = api.get(f"{REPORTS}/123")
    document_response = api.get(f"{DOCUMENTS}/amzn1.spdoc.1.4.eu.nothing")

    assert report_response.status_code == document_response.status_code == 404
    assert_matches_model(MODEL, "getReport", 404, report_response.json())
    assert_matches_model(MODEL, "getReportDocument", 404, document_response.json())


def test_document_is_not_served_before_the_report_is_done(slow_reports: SpApi) -> None:
    server = slow_reports.server
    report_id = request_report(slow_reports, **window(server, days=5)).json()["reportId"]
    server.simulator.advance_clock(61)
    document_id = report(slow_reports, report_id)["reportDocumentId"]
    server.simulator.advance_clock(-61)

    response = slow_reports.get(f"{DOCUMENTS}/{document_id}")

    assert response.status_code == 404

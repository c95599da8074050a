"""Fault injection: 500/503, dropped connections, malformed JSON, expired tokens, delays."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx
import pytest

from keybuzz.simulator import FaultSettings, SimulatorServer
from keybuzz.simulator.faults import NOT_A_DATE, FaultKind, ScriptedFault
from tests.simulator.conftest import LONG_AGO, SEARCH, SpApi
from tests.simulator.schemas import assert_matches_model
from tests.simulator.test_reports import download, report, request_report, window

MODEL = "orders_2026-01-01.json"
PARTICIPATIONS = "/sellers/v1/marketplaceParticipations"


def outcome(api: SpApi) -> str:
    try:
        response = api.get(SEARCH, createdAfter=LONG_AGO, maxResultsPerPage=1)
    except httpx.RemoteProtocolError:
        return "drop"
    try:
        response.json()
    except json.JSONDecodeError:
        return "malformed"
    return str(response.status_code)


@pytest.fixture
def faulty(
    make_server: Callable[..., SimulatorServer], connect: Callable[..., SpApi]
) -> Callable[..., SpApi]:
    def start(**faults: object) -> SpApi:
        server = make_server(faults=FaultSettings.model_validate(faults))
        return connect(server, server.settings.seller_id)

    return start


def test_internal_errors_use_amazon_body(faulty: Callable[..., SpApi]) -> None:
    api = faulty(error_rate=1.0, seed=3)

    responses = [api.get(SEARCH, createdAfter=LONG_AGO) for _ in range(12)]

    assert {r.status_code for r in responses} == {500, 503}
    for response in responses:
        assert_matches_model(MODEL, "searchOrders", response.status_code, response.json())
        assert response.json()["errors"][0] == {
            "code": "InternalFailure",
            "message": "We encountered an internal error. Please try again.",
        }


def test_dropped_connection_ends_mid_response(faulty: Callable[..., SpApi]) -> None:
    api = faulty(drop_rate=1.0)

    with pytest.raises(httpx.RemoteProtocolError):
        api.get(SEARCH, createdAfter=LONG_AGO)

    assert api.get("/_sim/counters").json()["v2026.searchOrders"]["faults"] == {"drop": 1}


def test_malformed_json_is_a_200_that_does_not_parse(faulty: Callable[..., SpApi]) -> None:
    api = faulty(malformed_json_rate=1.0)

    response = api.get(SEARCH, createdAfter=LONG_AGO)

    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_expired_token_fault_is_amazons_403(faulty: Callable[..., SpApi]) -> None:
    api = faulty(expired_token_rate=1.0)

    response = api.get(SEARCH, createdAfter=LONG_AGO)

    assert response.status_code == 403
    assert response.json()["errors"][0]["details"] == "The access token you provided has expired."


def test_slow_responses_are_delayed(faulty: Callable[..., SpApi]) -> None:
    api = faulty(slow_rate=1.0, slow_seconds=0.3)

    started = time.perf_counter()
    response = api.get(SEARCH, createdAfter=LONG_AGO, maxResultsPerPage=1)

    assert response.status_code == 200
    assert time.perf_counter() - started >= 0.3


def test_same_seed_same_faults(faulty: Callable[..., SpApi]) -> None:
    knobs = {"error_rate": 0.3, "drop_rate": 0.2, "malformed_json_rate": 0.2, "seed": 99}
    first, second = faulty(**knobs), faulty(**knobs)

    first_run = [outcome(first) for _ in range(25)]
    second_run = [outcome(second) for _ in range(25)]

    assert first_run == second_run
    assert {"200", "drop", "malformed"} <= set(first_run)
    assert {"500", "503"} & set(first_run)


def test_faults_can_target_operations(faulty: Callable[..., SpApi]) -> None:
    api = faulty(error_rate=1.0, operations=["sellers.getMarketplaceParticipations"])

    assert api.get(SEARCH, createdAfter=LONG_AGO).status_code == 200
    assert api.get(PARTICIPATIONS).status_code in (500, 503)


def test_faults_set_and_scripted_through_inspection_api(faulty: Callable[..., SpApi]) -> None:
    api = faulty()
    api.http.post(
        "/_sim/faults/script",
        json={"faults": [{"kind": "503", "operation": "v2026.searchOrders"}, {"kind": "drop"}]},
    )

    scripted = [outcome(api) for _ in range(3)]
    api.http.put("/_sim/faults", json={"error_rate": 1.0})
    configured = outcome(api)
    api.http.delete("/_sim/faults")

    assert scripted == ["503", "drop", "200"]
    assert configured in ("500", "503")
    assert outcome(api) == "200"


def done(api: SpApi, created: httpx.Response) -> str:
    """The document id of a report created just now (generated at once)."""
    body = report(api, created.json()["reportId"])
    assert body["processingStatus"] == "DONE"
    return str(body["reportDocumentId"])


def test_a_malformed_order_breaks_one_order_of_an_otherwise_valid_answer(
    faulty: Callable[..., SpApi],
) -> None:
    api = faulty()
    intact = api.get(SEARCH, createdAfter=LONG_AGO, maxResultsPerPage=3).json()["orders"]
    api.http.post(
        "/_sim/faults/script",
        json={
            "faults": [
                {"kind": "malformed_order", "operation": "v2026.searchOrders"},
                {"kind": "malformed_order", "operation": "v0.getOrders"},
            ]
        },
    )

    v2026 = api.get(SEARCH, createdAfter=LONG_AGO, maxResultsPerPage=3)
    v0 = api.get(
        "/orders/v0/orders",
        CreatedAfter=LONG_AGO,
        MaxResultsPerPage=3,
        MarketplaceIds="A13V1IB3VIYZZH",
    )
    again = api.get(SEARCH, createdAfter=LONG_AGO, maxResultsPerPage=3).json()["orders"]

    broken = v2026.json()["orders"]
    assert v2026.status_code == v0.status_code == 200
    assert broken[0] == {**intact[0], "createdTime": NOT_A_DATE}
    assert broken[1:] == intact[1:]
    assert v0.json()["payload"]["Orders"][0]["PurchaseDate"] == NOT_A_DATE
    assert v0.json()["payload"]["Orders"][1]["PurchaseDate"] != NOT_A_DATE
    assert again == intact
    assert api.get("/_sim/counters").json()["v2026.searchOrders"]["faults"] == {
        "malformed_order": 1
    }


def test_a_report_requested_with_a_malformed_order_has_an_unreadable_first_line(
    make_server: Callable[..., SimulatorServer], connect: Callable[..., SpApi]
) -> None:
    server = make_server(report_generation_seconds=0, orders=40, days=20)
    api = connect(server, server.settings.seller_id)
    server.simulator.script_faults(
        [ScriptedFault(FaultKind.MALFORMED_ORDER, "reports.createReport")]
    )

    broken = download(api, done(api, request_report(api, **window(server, days=25))))
    intact = download(api, done(api, request_report(api, **window(server, days=25))))

    assert broken[0] == {**intact[0], "purchase-date": NOT_A_DATE}
    assert broken[1:] == intact[1:]

"""Every simulated operation answers 403, 429, 500 and 503 with the body its model declares."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from keybuzz.simulator import SimulatorServer
from keybuzz.simulator.operations import SIMULATED, usage_plan
from tests.simulator.conftest import FR, LONG_AGO, SpApi, caller, settings
from tests.simulator.schemas import assert_matches_model

ORDER = "402-0000000-0000001"
CALLS: dict[str, tuple[str, str, dict[str, Any] | None]] = {
    "v0.getOrders": ("GET", f"/orders/v0/orders?MarketplaceIds={FR}&CreatedAfter={LONG_AGO}", None),
    "v0.getOrder": ("GET", f"/orders/v0/orders/{ORDER}", None),
    "v0.getOrderItems": ("GET", f"/orders/v0/orders/{ORDER}/orderItems", None),
    "v0.getOrderAddress": ("GET", f"/orders/v0/orders/{ORDER}/address", None),
    "v0.getOrderBuyerInfo": ("GET", f"/orders/v0/orders/{ORDER}/buyerInfo", None),
    "v0.getOrderItemsBuyerInfo": ("GET", f"/orders/v0/orders/{ORDER}/orderItems/buyerInfo", None),
    "v2026.searchOrders": ("GET", f"/orders/2026-01-01/orders?createdAfter={LONG_AGO}", None),
    "v2026.getOrder": ("GET", f"/orders/2026-01-01/orders/{ORDER}", None),
    "reports.createReport": (
        "POST",
        "/reports/2021-06-30/reports",
        {
            "reportType": "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL",
            "marketplaceIds": [FR],
        },
    ),
    "reports.getReport": ("GET", "/reports/2021-06-30/reports/1", None),
    "reports.getReportDocument": ("GET", "/reports/2021-06-30/documents/amzn1.spdoc.x", None),
    "sellers.getMarketplaceParticipations": ("GET", "/sellers/v1/marketplaceParticipations", None),
    "tokens.createRestrictedDataToken": (
        "POST",
        "/tokens/2021-03-01/restrictedDataToken",
        {"restrictedResources": [{"method": "GET", "path": "/orders/v0/orders/{orderId}/address"}]},
    ),
}


def call(http: httpx.Client, name: str, token: str | None) -> httpx.Response:
    method, url, body = CALLS[name]
    headers = {"x-amz-access-token": token} if token else {}
    return http.request(method, url, json=body, headers=headers)


def assert_model_body(name: str, response: httpx.Response, status: int) -> None:
    model_file, operation_id = SIMULATED[name]
    assert response.status_code == status
    assert_matches_model(model_file, operation_id, status, response.json())


def test_every_simulated_operation_is_exercised() -> None:
    assert set(CALLS) == set(SIMULATED)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_missing_token_is_403_in_model_shape(api: SpApi, name: str) -> None:
    assert_model_body(name, call(api.http, name, None), 403)


@pytest.fixture(scope="module")
def real_rates() -> Iterator[SpApi]:
    """One server at Amazon's real rates; each test drains a different operation's bucket."""
    with (
        SimulatorServer(settings(rate_scale=1.0, orders=5)) as server,
        httpx.Client(base_url=server.base_url) as http,
    ):
        yield caller(server, http, server.settings.seller_id)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_exhausted_bucket_is_429_in_model_shape(real_rates: SpApi, name: str) -> None:
    for _ in range(usage_plan(name).burst):
        assert call(real_rates.http, name, real_rates.access_token).status_code != 429

    assert_model_body(name, call(real_rates.http, name, real_rates.access_token), 429)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_server_errors_are_in_model_shape(real_rates: SpApi, name: str) -> None:
    faults = [{"kind": "500", "operation": name}, {"kind": "503", "operation": name}]
    real_rates.http.post("/_sim/faults/script", json={"faults": faults})

    assert_model_body(name, call(real_rates.http, name, real_rates.access_token), 500)
    assert_model_body(name, call(real_rates.http, name, real_rates.access_token), 503)

"""Orders API v2026-01-01: searchOrders and getOrder, against the model and Amazon's rules."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from keybuzz.simulator import SimulatorServer
from tests.simulator.conftest import (
    EVERY_INCLUDED_DATA,
    LONG_AGO,
    SEARCH,
    SpApi,
    caller,
    new_seller,
    searchable_truth,
)
from tests.simulator.schemas import assert_matches_model

MODEL = "orders_2026-01-01.json"


def stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def sim_now(server: SimulatorServer) -> datetime:
    return datetime.fromtimestamp(server.simulator.now(), UTC)


@pytest.fixture(scope="module")
def busy_seller(server: SimulatorServer) -> str:
    """Many recent orders, so every status and channel shows up."""
    return new_seller(server, orders=400, days=3, seed=2026, seller_id="ABUSYSELLER2026")


@pytest.fixture
def busy(server: SimulatorServer, http: httpx.Client, busy_seller: str) -> SpApi:
    return caller(server, http, busy_seller)


def truth(server: SimulatorServer, seller_id: str) -> list[dict[str, Any]]:
    orders: list[dict[str, Any]] = server.simulator.ground_truth(seller_id)["orders"]
    return orders


def all_pages(api: SpApi, **params: Any) -> list[dict[str, Any]]:
    orders: list[dict[str, Any]] = []
    token = None
    while True:
        page_params = dict(params, **({"paginationToken": token} if token else {}))
        response = api.get(SEARCH, **page_params)
        assert response.status_code == 200, response.text
        orders.extend(response.json()["orders"])
        token = response.json().get("pagination", {}).get("nextToken")
        if token is None:
            return orders


def test_search_orders_with_every_dataset_matches_the_model(busy: SpApi) -> None:
    response = busy.get(SEARCH, createdAfter=LONG_AGO, includedData=EVERY_INCLUDED_DATA)

    assert response.status_code == 200
    assert_matches_model(MODEL, "searchOrders", 200, response.json())
    assert response.headers["x-amzn-RateLimit-Limit"] == "560"
    assert len(response.json()["orders"]) == 100


def test_without_included_data_only_the_basics_come_back(busy: SpApi) -> None:
    orders = busy.get(SEARCH, createdAfter=LONG_AGO, maxResultsPerPage=20).json()["orders"]

    for order in orders:
        assert not {"buyer", "recipient", "proceeds", "fulfillment", "packages"} & set(order)
        assert {"orderId", "createdTime", "lastUpdatedTime", "salesChannel"} <= set(order)
        for item in order["orderItems"]:
            assert {"orderItemId", "quantityOrdered", "product"} <= set(item)
            assert not {"proceeds", "fulfillment"} & set(item)


def test_pages_cover_every_order_once(server: SimulatorServer, busy: SpApi) -> None:
    orders = all_pages(busy, createdAfter=LONG_AGO, maxResultsPerPage=37)

    ids = [order["orderId"] for order in orders]
    assert len(ids) == len(set(ids))
    assert set(ids) == {order["orderId"] for order in searchable_truth(server, busy.seller_id)}
    created = [order["createdTime"] for order in orders]
    assert created == sorted(created)


def test_last_page_has_no_pagination(busy: SpApi) -> None:
    response = busy.get(SEARCH, createdAfter=LONG_AGO, maxResultsPerPage=100)
    token = response.json()["pagination"]["nextToken"]
    pages = [response.json()]
    while "pagination" in pages[-1]:
        next_token = pages[-1]["pagination"]["nextToken"]
        pages.append(busy.get(SEARCH, createdAfter=LONG_AGO, paginationToken=next_token).json())

    assert token
    assert "pagination" not in pages[-1]
    assert_matches_model(MODEL, "searchOrders", 200, pages[-1])


def test_page_size_and_included_data_may_change_between_pages(busy: SpApi) -> None:
    first = busy.get(SEARCH, createdAfter=LONG_AGO, maxResultsPerPage=5).json()
    token = first["pagination"]["nextToken"]

    second = busy.get(
        SEARCH,
        createdAfter=LONG_AGO,
        maxResultsPerPage=9,
        includedData="FULFILLMENT",
        paginationToken=token,
    )

    assert second.status_code == 200
    assert len(second.json()["orders"]) == 9
    assert "fulfillment" in second.json()["orders"][0]


@pytest.mark.parametrize(
    "changed",
    [
        {"createdAfter": "2001-01-01T00:00:00Z"},
        {"createdAfter": LONG_AGO, "fulfillmentStatuses": "SHIPPED"},
        {},
    ],
    ids=["other-date", "extra-filter", "token-alone"],
)
def test_pagination_token_needs_the_same_parameters(busy: SpApi, changed: dict[str, str]) -> None:
    token = busy.get(SEARCH, createdAfter=LONG_AGO, maxResultsPerPage=5).json()["pagination"]

    response = busy.get(SEARCH, paginationToken=token["nextToken"], **changed)

    assert response.status_code == 400
    assert_matches_model(MODEL, "searchOrders", 400, response.json())
    assert response.json()["errors"][0]["code"] == "InvalidInput"


def test_pagination_token_expires_after_24_hours(
    make_server: Callable[..., SimulatorServer], connect: Callable[..., SpApi]
) -> None:
    server = make_server()
    api = connect(server, server.settings.seller_id)
    token = api.get(SEARCH, createdAfter=LONG_AGO, maxResultsPerPage=5).json()["pagination"]
    server.simulator.advance_clock(24 * 3600 + 1)
    api.refresh()

    response = api.get(SEARCH, createdAfter=LONG_AGO, paginationToken=token["nextToken"])

    assert response.status_code == 400
    assert "expired" in response.json()["errors"][0]["message"]


def test_before_bounds_must_be_two_minutes_old(server: SimulatorServer, api: SpApi) -> None:
    now = sim_now(server)

    too_recent = api.get(
        SEARCH, createdAfter=LONG_AGO, createdBefore=stamp(now - timedelta(seconds=60))
    )
    old_enough = api.get(
        SEARCH, createdAfter=LONG_AGO, createdBefore=stamp(now - timedelta(minutes=3))
    )
    updated = api.get(
        SEARCH, lastUpdatedAfter=LONG_AGO, lastUpdatedBefore=stamp(now - timedelta(seconds=30))
    )

    assert too_recent.status_code == updated.status_code == 400
    assert_matches_model(MODEL, "searchOrders", 400, too_recent.json())
    assert old_enough.status_code == 200
    assert old_enough.json()["createdBefore"] == stamp(now - timedelta(minutes=3))


def test_applied_upper_bound_defaults_to_two_minutes_ago(
    server: SimulatorServer, api: SpApi
) -> None:
    before = sim_now(server) - timedelta(minutes=2)

    body = api.get(SEARCH, lastUpdatedAfter=LONG_AGO, maxResultsPerPage=1).json()

    echoed = datetime.fromisoformat(body["lastUpdatedBefore"])
    assert abs((echoed - before).total_seconds()) <= 2
    assert "createdBefore" not in body


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"createdAfter": LONG_AGO, "lastUpdatedAfter": LONG_AGO},
        {"lastUpdatedAfter": LONG_AGO, "createdBefore": "2020-01-01T00:00:00Z"},
        {"createdBefore": "2020-01-01T00:00:00Z"},
        {"createdAfter": "2020-02-01T00:00:00Z", "createdBefore": "2020-01-01T00:00:00Z"},
        {"createdAfter": "yesterday"},
        {"createdAfter": LONG_AGO, "maxResultsPerPage": "0"},
        {"createdAfter": LONG_AGO, "maxResultsPerPage": "101"},
        {"createdAfter": LONG_AGO, "fulfillmentStatuses": "Shipped"},
        {"createdAfter": LONG_AGO, "includedData": "EVERYTHING"},
        {"createdAfter": LONG_AGO, "marketplaceIds": "ATVPDKIKX0DER"},
    ],
    ids=[
        "no-date",
        "both-families",
        "mixed-families",
        "before-without-after",
        "before-earlier-than-after",
        "not-a-date",
        "page-size-0",
        "page-size-101",
        "v0-status-name",
        "unknown-dataset",
        "foreign-marketplace",
    ],
)
def test_invalid_searches_get_invalid_input(api: SpApi, params: dict[str, str]) -> None:
    response = api.get(SEARCH, **params)

    assert response.status_code == 400
    assert_matches_model(MODEL, "searchOrders", 400, response.json())
    assert response.json()["errors"][0]["code"] == "InvalidInput"
    assert response.headers["x-amzn-RateLimit-Limit"]


def test_invalid_date_message_names_the_field(api: SpApi) -> None:
    response = api.get(SEARCH, createdAfter="not-a-date")

    assert response.json()["errors"][0]["message"] == "Invalid Date-Time field(s) [createdAfter]."


def test_filters_by_status_and_fulfiller(busy: SpApi) -> None:
    orders = all_pages(
        busy,
        createdAfter=LONG_AGO,
        fulfillmentStatuses="UNSHIPPED,PENDING",
        fulfilledBy="MERCHANT",
        includedData="FULFILLMENT",
    )

    assert orders
    for order in orders:
        assert order["fulfillment"]["fulfillmentStatus"] in ("UNSHIPPED", "PENDING")
        assert order["fulfillment"]["fulfilledBy"] == "MERCHANT"


def test_money_is_hidden_before_payment_and_address_once_cancelled(
    server: SimulatorServer, busy: SpApi
) -> None:
    orders = all_pages(busy, createdAfter=LONG_AGO, includedData=EVERY_INCLUDED_DATA)
    pending = [o for o in orders if o["fulfillment"]["fulfillmentStatus"] == "PENDING"]
    cancelled = [o for o in orders if o["fulfillment"]["fulfillmentStatus"] == "CANCELLED"]

    assert pending
    assert cancelled
    for order in pending:
        assert "proceeds" not in order
        assert "recipient" not in order
        assert all("price" not in item["product"] for item in order["orderItems"])
    for order in cancelled:
        assert "recipient" not in order
        assert "proceeds" not in order


def test_buyer_email_only_for_merchant_fulfilled_orders_in_progress(busy: SpApi) -> None:
    orders = all_pages(busy, createdAfter=LONG_AGO, includedData="BUYER,FULFILLMENT")

    with_email = [o for o in orders if "buyerEmail" in o["buyer"]]
    assert with_email
    for order in orders:
        fulfillment = order["fulfillment"]
        eligible = fulfillment["fulfilledBy"] == "MERCHANT" and fulfillment[
            "fulfillmentStatus"
        ] in ("UNSHIPPED", "PARTIALLY_SHIPPED", "SHIPPED")
        assert ("buyerEmail" in order["buyer"]) == eligible


def test_afn_orders_have_no_ship_by_window(busy: SpApi) -> None:
    orders = all_pages(busy, createdAfter=LONG_AGO, includedData="FULFILLMENT")

    for order in orders:
        merchant = order["fulfillment"]["fulfilledBy"] == "MERCHANT"
        assert ("shipByWindow" in order["fulfillment"]) == merchant


def test_without_roles_no_pii_comes_back(
    make_server: Callable[..., SimulatorServer], connect: Callable[..., SpApi]
) -> None:
    server = make_server(pii_roles=[], orders=300, days=5)
    api = connect(server, server.settings.seller_id)

    orders = all_pages(api, createdAfter=LONG_AGO, includedData="BUYER,RECIPIENT")

    assert any("recipient" in order for order in orders)
    for order in orders:
        assert not {"buyerName", "buyerEmail"} & set(order["buyer"])
        address = order.get("recipient", {}).get("deliveryAddress", {})
        assert not {"name", "addressLine1", "postalCode", "phone"} & set(address)


def test_tax_roles_do_not_give_buyer_names_in_the_us(
    make_server: Callable[..., SimulatorServer], connect: Callable[..., SpApi]
) -> None:
    server = make_server(
        pii_roles=["TAX_INVOICING"], marketplaces=["ATVPDKIKX0DER"], orders=200, days=5
    )
    api = connect(server, server.settings.seller_id)

    orders = all_pages(api, createdAfter=LONG_AGO, includedData="BUYER,FULFILLMENT")

    assert orders
    assert all("buyerName" not in order["buyer"] for order in orders)


def test_get_order_matches_the_model(server: SimulatorServer, busy: SpApi) -> None:
    order_id = truth(server, busy.seller_id)[0]["orderId"]

    response = busy.get(f"{SEARCH}/{order_id}", includedData=EVERY_INCLUDED_DATA)

    assert response.status_code == 200
    assert_matches_model(MODEL, "getOrder", 200, response.json())
    assert response.json()["order"]["orderId"] == order_id


def test_get_order_errors_match_the_model(busy: SpApi) -> None:
    unknown = busy.get(f"{SEARCH}/999-9999999-9999999")
    malformed = busy.get(f"{SEARCH}/not-an-order")

    assert unknown.status_code == 404
    assert malformed.status_code == 400
    assert_matches_model(MODEL, "getOrder", 404, unknown.json())
    assert_matches_model(MODEL, "getOrder", 400, malformed.json())
    assert unknown.headers["x-amzn-RateLimit-Limit"]

"""Orders API v0: getOrders, getOrder, getOrderItems, the PII sub-resources, and RDT rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from keybuzz.simulator import SimulatorServer
from keybuzz.simulator.clock import iso
from tests.simulator.conftest import (
    FR,
    GET_ORDERS,
    LONG_AGO,
    SpApi,
    caller,
    new_seller,
    searchable_truth,
)
from tests.simulator.schemas import assert_matches_model

MODEL = "ordersV0.json"
RDT = "/tokens/2021-03-01/restrictedDataToken"
RESTRICTED_NAME = {"Name", "AddressLine1", "AddressType"}


@pytest.fixture(scope="module")
def v0_seller(server: SimulatorServer) -> str:
    return new_seller(server, orders=300, days=3, seed=1999, seller_id="AVZEROSELLER01")


@pytest.fixture
def v0(server: SimulatorServer, http: httpx.Client, v0_seller: str) -> SpApi:
    return caller(server, http, v0_seller)


def all_orders(api: SpApi, token: str | None = None, **params: Any) -> list[dict[str, Any]]:
    params = {"MarketplaceIds": FR, **params}
    orders: list[dict[str, Any]] = []
    while True:
        response = api.get(GET_ORDERS, token=token, **params)
        assert response.status_code == 200, response.text
        payload = response.json()["payload"]
        orders.extend(payload["Orders"])
        if not payload.get("NextToken"):
            return orders
        params["NextToken"] = payload["NextToken"]


def rdt(api: SpApi, path: str, elements: list[str] | None = None) -> str:
    resource: dict[str, Any] = {"method": "GET", "path": path}
    if elements is not None:
        resource["dataElements"] = elements
    response = api.post(RDT, {"restrictedResources": [resource]})
    assert response.status_code == 200, response.text
    token: str = response.json()["restrictedDataToken"]
    return token


def test_get_orders_matches_the_model(v0: SpApi) -> None:
    response = v0.get(GET_ORDERS, MarketplaceIds=FR, CreatedAfter=LONG_AGO)

    assert response.status_code == 200
    assert_matches_model(MODEL, "getOrders", 200, response.json())
    payload = response.json()["payload"]
    assert len(payload["Orders"]) == 100
    assert payload["NextToken"]
    assert payload["CreatedBefore"]
    assert response.headers["x-amzn-RateLimit-Limit"] == "1670"


def test_next_token_walks_every_order_once(server: SimulatorServer, v0: SpApi) -> None:
    orders = all_orders(v0, CreatedAfter=LONG_AGO, MaxResultsPerPage=33)

    ids = [order["AmazonOrderId"] for order in orders]
    expected = {o["orderId"] for o in searchable_truth(server, v0.seller_id)}
    assert len(ids) == len(set(ids)) == len(expected)
    assert set(ids) == expected


def test_next_token_needs_only_the_marketplace(v0: SpApi) -> None:
    first = v0.get(GET_ORDERS, MarketplaceIds=FR, CreatedAfter=LONG_AGO, MaxResultsPerPage=10)
    token = first.json()["payload"]["NextToken"]

    second = v0.get(GET_ORDERS, MarketplaceIds=FR, NextToken=token)

    assert second.status_code == 200
    assert len(second.json()["payload"]["Orders"]) == 100


@pytest.mark.parametrize(
    "params",
    [
        {"CreatedAfter": LONG_AGO},
        {"MarketplaceIds": FR},
        {"MarketplaceIds": FR, "CreatedAfter": LONG_AGO, "LastUpdatedAfter": LONG_AGO},
        {"MarketplaceIds": FR, "CreatedAfter": LONG_AGO, "MaxResultsPerPage": "101"},
        {"MarketplaceIds": FR, "CreatedAfter": LONG_AGO, "OrderStatuses": "SHIPPED"},
        {"MarketplaceIds": FR, "CreatedAfter": LONG_AGO, "SellerOrderId": "X", "BuyerEmail": "a"},
        {"MarketplaceIds": FR, "NextToken": "bm90IGEgdG9rZW4="},
        {"MarketplaceIds": "A1PA6795UKMFR9", "CreatedAfter": LONG_AGO},
    ],
    ids=[
        "no-marketplace",
        "no-date",
        "both-families",
        "page-size",
        "v2026-status-name",
        "seller-order-id-exclusive",
        "forged-next-token",
        "marketplace-not-participating",
    ],
)
def test_invalid_get_orders(v0: SpApi, params: dict[str, str]) -> None:
    response = v0.get(GET_ORDERS, **params)

    assert response.status_code == 400
    assert_matches_model(MODEL, "getOrders", 400, response.json())
    assert response.json()["errors"][0]["code"] == "InvalidInput"


def test_created_before_must_be_two_minutes_old(server: SimulatorServer, v0: SpApi) -> None:
    response = v0.get(
        GET_ORDERS,
        MarketplaceIds=FR,
        CreatedAfter=LONG_AGO,
        CreatedBefore=iso(server.simulator.now()),
    )

    assert response.status_code == 400


def test_filters_and_batch_lookup(v0: SpApi) -> None:
    unshipped = all_orders(
        v0, CreatedAfter=LONG_AGO, OrderStatuses="Unshipped,Pending", FulfillmentChannels="MFN"
    )
    wanted = [order["AmazonOrderId"] for order in unshipped[:3]]

    by_ids = all_orders(v0, AmazonOrderIds=",".join(wanted))

    assert unshipped
    assert all(o["OrderStatus"] in ("Unshipped", "Pending") for o in unshipped)
    assert all(o["FulfillmentChannel"] == "MFN" for o in unshipped)
    assert sorted(o["AmazonOrderId"] for o in by_ids) == sorted(wanted)


def test_optional_fields_are_missing_where_amazon_omits_them(v0: SpApi) -> None:
    orders = all_orders(v0, CreatedAfter=LONG_AGO)
    by_status: dict[str, list[dict[str, Any]]] = {}
    for order in orders:
        by_status.setdefault(order["OrderStatus"], []).append(order)

    assert {"Pending", "Unshipped", "Shipped", "Canceled"} <= set(by_status)
    assert all("OrderTotal" not in o for o in by_status["Pending"])
    assert all("ShippingAddress" not in o for o in by_status["Canceled"] + by_status["Pending"])
    assert all("OrderTotal" in o for o in by_status["Shipped"])
    for order in orders:
        afn = order["FulfillmentChannel"] == "AFN"
        assert ("LatestShipDate" in order) == (not afn)
        if order["OrderStatus"] == "Pending":
            assert "LatestDeliveryDate" not in order


def test_pending_order_items_have_no_prices(server: SimulatorServer, v0: SpApi) -> None:
    pending = all_orders(v0, CreatedAfter=LONG_AGO, OrderStatuses="Pending")[0]["AmazonOrderId"]

    response = v0.get(f"{GET_ORDERS}/{pending}/orderItems")

    assert response.status_code == 200
    assert_matches_model(MODEL, "getOrderItems", 200, response.json())
    for item in response.json()["payload"]["OrderItems"]:
        assert not {"ItemPrice", "ItemTax", "ShippingPrice", "PromotionDiscount"} & set(item)


def test_get_order_and_items_match_the_model(v0: SpApi) -> None:
    shipped = all_orders(v0, CreatedAfter=LONG_AGO, OrderStatuses="Shipped")[0]["AmazonOrderId"]

    order = v0.get(f"{GET_ORDERS}/{shipped}")
    items = v0.get(f"{GET_ORDERS}/{shipped}/orderItems")

    assert_matches_model(MODEL, "getOrder", 200, order.json())
    assert_matches_model(MODEL, "getOrderItems", 200, items.json())
    assert items.json()["payload"]["AmazonOrderId"] == shipped
    assert all("ItemPrice" in item for item in items.json()["payload"]["OrderItems"])


def test_unknown_and_malformed_order_ids(v0: SpApi) -> None:
    for operation, suffix in (("getOrder", ""), ("getOrderItems", "/orderItems")):
        unknown = v0.get(f"{GET_ORDERS}/999-9999999-9999999{suffix}")
        malformed = v0.get(f"{GET_ORDERS}/TEST_CASE_200{suffix}")
        assert (unknown.status_code, malformed.status_code) == (404, 400)
        assert_matches_model(MODEL, operation, 404, unknown.json())
        assert_matches_model(MODEL, operation, 400, malformed.json())


def test_order_items_are_paginated_with_next_token(
    make_server: Callable[..., SimulatorServer], connect: Callable[..., SpApi]
) -> None:
    server = make_server(order_items_page_size=1, orders=200)
    api = connect(server, server.settings.seller_id)
    truth = server.simulator.ground_truth(api.seller_id)["orders"]
    order = next(o for o in truth if len(o["orderItems"]) >= 3)
    path = f"{GET_ORDERS}/{order['orderId']}/orderItems"

    seen: list[str] = []
    params: dict[str, str] = {}
    while True:
        payload = api.get(path, **params).json()["payload"]
        seen.extend(item["OrderItemId"] for item in payload["OrderItems"])
        if "NextToken" not in payload:
            break
        params = {"NextToken": payload["NextToken"]}

    assert seen == [item["orderItemId"] for item in order["orderItems"]]


def test_pii_needs_a_restricted_data_token(v0: SpApi) -> None:
    plain = all_orders(v0, CreatedAfter=LONG_AGO, OrderStatuses="Unshipped")
    token = rdt(v0, GET_ORDERS, ["buyerInfo", "shippingAddress"])
    restricted = all_orders(v0, token=token, CreatedAfter=LONG_AGO, OrderStatuses="Unshipped")

    assert plain
    for order in plain:
        assert not RESTRICTED_NAME & set(order["ShippingAddress"])
        assert "BuyerName" not in order["BuyerInfo"]
        assert {"City", "PostalCode", "CountryCode"} <= set(order["ShippingAddress"])
    for order in restricted:
        assert RESTRICTED_NAME <= set(order["ShippingAddress"])
        assert order["BuyerInfo"]["BuyerName"]


def test_rdt_grants_only_the_elements_and_paths_it_names(v0: SpApi) -> None:
    order_id = all_orders(v0, CreatedAfter=LONG_AGO, OrderStatuses="Unshipped")[0]["AmazonOrderId"]
    address_only = rdt(v0, f"{GET_ORDERS}/{order_id}", ["shippingAddress"])

    order = v0.get(f"{GET_ORDERS}/{order_id}", token=address_only).json()["payload"]
    listing = v0.get(GET_ORDERS, token=address_only, MarketplaceIds=FR, CreatedAfter=LONG_AGO)
    search = v0.get("/orders/2026-01-01/orders", token=address_only, createdAfter=LONG_AGO)

    assert RESTRICTED_NAME <= set(order["ShippingAddress"])
    assert "BuyerName" not in order["BuyerInfo"]
    assert listing.status_code == search.status_code == 403
    assert_matches_model(MODEL, "getOrders", 403, listing.json())


def test_pii_sub_resources_match_the_model(v0: SpApi) -> None:
    order_id = all_orders(v0, CreatedAfter=LONG_AGO, OrderStatuses="Shipped")[0]["AmazonOrderId"]
    base = f"{GET_ORDERS}/{order_id}"
    paths = {
        "getOrderAddress": f"{base}/address",
        "getOrderBuyerInfo": f"{base}/buyerInfo",
        "getOrderItemsBuyerInfo": f"{base}/orderItems/buyerInfo",
    }
    token = v0.post(
        RDT,
        {"restrictedResources": [{"method": "GET", "path": path} for path in paths.values()]},
    ).json()["restrictedDataToken"]

    for operation, path in paths.items():
        plain, full = v0.get(path), v0.get(path, token=token)
        assert plain.status_code == full.status_code == 200
        assert_matches_model(MODEL, operation, 200, plain.json())
        assert_matches_model(MODEL, operation, 200, full.json())
    address = v0.get(paths["getOrderAddress"], token=token).json()["payload"]["ShippingAddress"]
    assert "AddressLine1" in address
    assert "BuyerName" in v0.get(paths["getOrderBuyerInfo"], token=token).json()["payload"]

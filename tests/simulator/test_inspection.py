"""The ``/_sim/`` inspection API: sellers, order changes, ground truth, clock, counters."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from keybuzz.simulator import SimulatorServer
from keybuzz.simulator.clock import iso
from tests.simulator.conftest import LONG_AGO, SEARCH, SpApi, searchable_truth


def test_overview_shows_the_app_credentials(http: httpx.Client, server: SimulatorServer) -> None:
    body = http.get("/_sim").json()

    assert body["app"]["client_id"] == "amzn1.application-oa2-client.keybuzzsim"
    assert body["app"]["client_secret"] == server.settings.client_secret.get_secret_value()
    assert body["app"]["application_id"].startswith("amzn1.sp.solution.")
    assert server.settings.seller_id in [seller["seller_id"] for seller in body["sellers"]]


def test_create_seller_authorize_and_call(http: httpx.Client, server: SimulatorServer) -> None:
    created = http.post(
        "/_sim/sellers",
        json={"orders": 40, "days": 10, "seed": 4, "marketplaces": ["DE", "IT"]},
    )
    seller_id = created.json()["seller_id"]
    refresh = http.post(f"/_sim/sellers/{seller_id}/authorize").json()["refresh_token"]
    api = SpApi(server, http, seller_id, refresh)
    api.refresh()

    orders = api.get(SEARCH, createdAfter=LONG_AGO).json()["orders"]

    assert created.status_code == 201
    assert created.json()["orders"] == 40
    assert created.json()["marketplaces"] == ["A1PA6795UKMFR9", "APJ6JRA9NG5V4"]
    assert len(server.simulator.ground_truth(seller_id)["orders"]) == 40
    # One of them may have been created in the last two minutes, which no search returns yet.
    assert [o["orderId"] for o in orders] == [
        o["orderId"] for o in searchable_truth(server, seller_id)
    ]


def test_ground_truth_dump_shape(http: httpx.Client, server: SimulatorServer) -> None:
    seller_id = server.settings.seller_id

    dump = http.get(f"/_sim/sellers/{seller_id}/ground-truth").json()

    assert dump["sellerId"] == seller_id
    assert len(dump["orders"]) == server.settings.orders
    order = dump["orders"][0]
    assert {
        "orderId",
        "createdTime",
        "lastUpdatedTime",
        "orderStatus",
        "fulfillmentChannel",
        "salesChannel",
        "buyer",
        "fulfillment",
        "orderItems",
    } <= set(order)
    assert {"orderItemId", "quantityOrdered", "product"} <= set(order["orderItems"][0])


def test_changing_an_order_bumps_its_update_time(
    make_server: Callable[..., SimulatorServer], connect: Callable[..., SpApi]
) -> None:
    server = make_server()
    api = connect(server, server.settings.seller_id)
    order_id = server.simulator.ground_truth(api.seller_id)["orders"][0]["orderId"]
    changed_at = server.simulator.now()

    changed = api.http.patch(
        f"/_sim/sellers/{api.seller_id}/orders/{order_id}", json={"status": "Canceled"}
    )
    api.http.post("/_sim/clock", json={"advance_seconds": 180})
    api.refresh()
    found = api.get(SEARCH, lastUpdatedAfter=iso(changed_at), includedData="FULFILLMENT")

    assert changed.json()["orderStatus"] == "Canceled"
    by_id = {o["orderId"]: o for o in found.json()["orders"]}
    assert by_id[order_id]["fulfillment"]["fulfillmentStatus"] == "CANCELLED"
    # Other orders may have moved on by themselves in those 180 s (a parcel delivered): any
    # found besides the changed one was really updated since.
    assert all(o["lastUpdatedTime"] >= iso(changed_at) for o in by_id.values())


def test_added_orders_are_searchable_two_minutes_later(
    make_server: Callable[..., SimulatorServer], connect: Callable[..., SpApi]
) -> None:
    server = make_server(orders=5)
    api = connect(server, server.settings.seller_id)

    added = api.http.post(f"/_sim/sellers/{api.seller_id}/orders", json={"count": 3}).json()
    server.simulator.advance_clock(180)
    api.refresh()
    orders = api.get(SEARCH, createdAfter=LONG_AGO).json()["orders"]

    assert len(added["order_ids"]) == 3
    assert set(added["order_ids"]) <= {order["orderId"] for order in orders}
    assert len(orders) == 8


def test_counters_count_and_reset(
    make_server: Callable[..., SimulatorServer], connect: Callable[..., SpApi]
) -> None:
    server = make_server()
    api = connect(server, server.settings.seller_id)
    api.get(SEARCH, createdAfter=LONG_AGO)
    api.get(SEARCH)

    counters = api.http.get("/_sim/counters").json()
    api.http.delete("/_sim/counters")

    assert counters["v2026.searchOrders"]["requests"] == 2
    assert counters["v2026.searchOrders"]["statuses"] == {"200": 1, "400": 1}
    assert counters["lwa.token"]["requests"] == 1
    assert api.http.get("/_sim/counters").json() == {}


def test_clock_can_be_set_and_advanced(make_server: Callable[..., SimulatorServer]) -> None:
    server = make_server()
    with httpx.Client(base_url=server.base_url) as http:
        offset = http.post("/_sim/clock", json={"offset_seconds": 86400}).json()
        moved = http.post("/_sim/clock", json={"advance_seconds": 60}).json()

    assert offset["offset_seconds"] == 86400
    assert moved["offset_seconds"] == 86460


def test_unknown_seller_and_order_are_404(http: httpx.Client, server: SimulatorServer) -> None:
    seller_id = server.settings.seller_id

    assert http.get("/_sim/sellers/ANOBODY/ground-truth").status_code == 404
    response = http.patch(f"/_sim/sellers/{seller_id}/orders/999-0000000-0000000", json={})
    assert response.status_code == 404


def test_unknown_sp_api_path_is_amazons_403(api: SpApi) -> None:
    response = api.get("/orders/v1/orders")

    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "MissingAuthenticationToken"


def test_changing_buyer_and_address_shows_in_orders(
    make_server: Callable[..., SimulatorServer], connect: Callable[..., SpApi]
) -> None:
    server = make_server(orders=60, days=30)
    api = connect(server, server.settings.seller_id)
    order = next(
        o
        for o in server.simulator.ground_truth(api.seller_id)["orders"]
        if o["orderStatus"] == "Shipped" and o["fulfillmentChannel"] == "MFN"
    )
    server.simulator.advance_clock(60)
    api.refresh()

    api.http.patch(
        f"/_sim/sellers/{api.seller_id}/orders/{order['orderId']}",
        json={"buyer_name": "Zoé Nouvelle", "address": {"city": "Dijon", "postal_code": "21000"}},
    )
    changed = api.get(f"{SEARCH}/{order['orderId']}", includedData="BUYER,RECIPIENT").json()

    assert changed["order"]["buyer"]["buyerName"] == "Zoé Nouvelle"
    address = changed["order"]["recipient"]["deliveryAddress"]
    assert (address["city"], address["postalCode"]) == ("Dijon", "21000")
    assert changed["order"]["lastUpdatedTime"] > order["lastUpdatedTime"]
    products = [item["product"] for item in changed["order"]["orderItems"]]
    assert products == [item["product"] for item in order["orderItems"]]

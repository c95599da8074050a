"""Generated data: deterministic, realistic, moving with the clock, and the same in every view."""

from __future__ import annotations

import csv
import gzip
import io
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from keybuzz.simulator import SellerSpec, Simulator, SimulatorServer, SimulatorSettings
from keybuzz.simulator.clock import SimClock, iso
from tests.simulator.conftest import (
    DE,
    EVERY_INCLUDED_DATA,
    FR,
    GET_ORDERS,
    LONG_AGO,
    SEARCH,
    SpApi,
    new_seller,
    searchable_truth,
)

FIXED_NOW = 1_790_000_000.0
BY_DATE = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"


def frozen_simulator(**settings: Any) -> Simulator:
    return Simulator(SimulatorSettings(**settings), SimClock(lambda: FIXED_NOW))


def search_all(api: SpApi, **params: Any) -> list[dict[str, Any]]:
    orders: list[dict[str, Any]] = []
    while True:
        body = api.get(SEARCH, **params).json()
        orders.extend(body["orders"])
        if "pagination" not in body:
            return orders
        params["paginationToken"] = body["pagination"]["nextToken"]


def v0_all(api: SpApi, **params: Any) -> list[dict[str, Any]]:
    orders: list[dict[str, Any]] = []
    params = {"MarketplaceIds": f"{FR},{DE}", **params}
    while True:
        payload = api.get(GET_ORDERS, **params).json()["payload"]
        orders.extend(payload["Orders"])
        if "NextToken" not in payload:
            return orders
        params["NextToken"] = payload["NextToken"]


def test_same_seed_same_data() -> None:
    first = frozen_simulator(orders=300, seed=5, marketplaces=[FR, DE])
    second = frozen_simulator(orders=300, seed=5, marketplaces=[FR, DE])
    other = frozen_simulator(orders=300, seed=6, marketplaces=[FR, DE])

    truth = first.ground_truth(first.settings.seller_id)

    assert truth == second.ground_truth(second.settings.seller_id)
    assert truth["orders"] != other.ground_truth(other.settings.seller_id)["orders"]


def test_anchor_moves_times_but_not_the_orders() -> None:
    simulator = frozen_simulator(orders=0)
    spec = {"orders": 50, "days": 10, "seed": 3, "marketplaces": (FR,)}
    now = int(FIXED_NOW)
    simulator.create_seller(SellerSpec(seller_id="AEARLY", anchor=now - 86400 - 7777, **spec))
    simulator.create_seller(SellerSpec(seller_id="ALATE", anchor=now, **spec))

    def skeleton(seller_id: str) -> list[Any]:
        orders = simulator.ground_truth(seller_id)["orders"]
        items = [
            [(i["orderItemId"], i["quantityOrdered"]) for i in o["orderItems"]] for o in orders
        ]
        return sorted(zip([o["orderId"] for o in orders], items, strict=True))

    assert skeleton("AEARLY") == skeleton("ALATE")


def test_status_mix_channels_and_unicode_look_like_a_real_seller() -> None:
    simulator = frozen_simulator(orders=3000, days=10, marketplaces=[FR, DE, "A1F83G8C2ARO7P"])

    orders = simulator.ground_truth(simulator.settings.seller_id)["orders"]

    statuses = Counter(order["orderStatus"] for order in orders)
    assert {"Pending", "Unshipped", "Shipped", "Canceled", "PartiallyShipped"} <= set(statuses)
    assert statuses["Shipped"] > len(orders) * 0.6
    channels = Counter(order["fulfillmentChannel"] for order in orders)
    assert 0.3 < channels["AFN"] / len(orders) < 0.6
    assert {len(order["orderItems"]) for order in orders} == {1, 2, 3, 4, 5}
    currencies = {
        order["salesChannel"]["marketplaceId"]: order["proceeds"]["grandTotal"]["currencyCode"]
        for order in orders
        if "proceeds" in order
    }
    assert currencies == {FR: "EUR", DE: "EUR", "A1F83G8C2ARO7P": "GBP"}
    names = [order["buyer"].get("buyerName", "") for order in orders]
    assert any(not name.isascii() for name in names)


def test_v0_v2026_and_report_describe_the_same_orders(
    make_server: Callable[..., SimulatorServer], connect: Callable[..., SpApi]
) -> None:
    server = make_server(orders=120, days=20, marketplaces=[FR, DE], report_generation_seconds=0)
    api = connect(server, server.settings.seller_id)
    v2026 = {
        o["orderId"]: o
        for o in search_all(api, createdAfter=LONG_AGO, includedData=EVERY_INCLUDED_DATA)
    }
    v0 = {o["AmazonOrderId"]: o for o in v0_all(api, CreatedAfter=LONG_AGO)}
    rows = report_rows(api)

    assert set(v0) == set(v2026) == {row["amazon-order-id"] for row in rows}
    for order_id in list(v0)[:40]:
        items = api.get(f"{GET_ORDERS}/{order_id}/orderItems").json()["payload"]["OrderItems"]
        assert_same_order(
            v0[order_id],
            items,
            v2026[order_id],
            [r for r in rows if r["amazon-order-id"] == order_id],
        )


def report_rows(api: SpApi) -> list[dict[str, str]]:
    """The order-date flat file of the 30 days up to the searchable limit, now - 2 minutes."""
    now = api.server.simulator.now()
    spec = {
        "reportType": BY_DATE,
        "marketplaceIds": [FR, DE],
        "dataStartTime": iso(now - 30 * 86400),
        "dataEndTime": iso(now - 120),
    }
    report_id = api.post("/reports/2021-06-30/reports", spec).json()["reportId"]
    report = api.get(f"/reports/2021-06-30/reports/{report_id}").json()
    document = api.get(f"/reports/2021-06-30/documents/{report['reportDocumentId']}").json()
    text = gzip.decompress(api.http.get(document["url"]).content).decode()
    return list(csv.DictReader(io.StringIO(text), delimiter="\t"))


def assert_same_order(
    v0: dict[str, Any],
    v0_items: list[dict[str, Any]],
    v2026: dict[str, Any],
    rows: list[dict[str, str]],
) -> None:
    assert v0["PurchaseDate"] == v2026["createdTime"]
    assert v0["LastUpdateDate"] == v2026["lastUpdatedTime"]
    assert v0["MarketplaceId"] == v2026["salesChannel"]["marketplaceId"]
    if "OrderTotal" in v0:
        assert v0["OrderTotal"]["Amount"] == v2026["proceeds"]["grandTotal"]["amount"]
    else:
        assert "proceeds" not in v2026
    new_items = v2026["orderItems"]
    assert [i["OrderItemId"] for i in v0_items] == [i["orderItemId"] for i in new_items]
    assert [r["sku"] for r in rows] == [i["product"]["sellerSku"] for i in new_items]
    for old, new, row in zip(v0_items, new_items, rows, strict=True):
        assert old["SellerSKU"] == new["product"]["sellerSku"]
        assert old["ASIN"] == new["product"]["asin"] == row["asin"]
        assert old["QuantityOrdered"] == new["quantityOrdered"] == int(row["quantity"])
        if "ItemPrice" in old:
            unit = Decimal(new["product"]["price"]["unitPrice"]["amount"])
            assert Decimal(old["ItemPrice"]["Amount"]) == unit * new["quantityOrdered"]
            assert row["item-price"] == old["ItemPrice"]["Amount"]


def test_orders_move_on_as_the_clock_runs(
    make_server: Callable[..., SimulatorServer], connect: Callable[..., SpApi]
) -> None:
    server = make_server(orders=200, days=2)
    api = connect(server, server.settings.seller_id)
    simulator = server.simulator
    before = {o["orderId"]: o for o in simulator.ground_truth(api.seller_id)["orders"]}
    start = simulator.now()

    simulator.advance_clock(3 * 86400)
    api.refresh()
    after = {o["orderId"]: o for o in simulator.ground_truth(api.seller_id)["orders"]}
    changed = {i for i in before if before[i]["lastUpdatedTime"] != after[i]["lastUpdatedTime"]}
    found = search_all(api, lastUpdatedAfter=iso(start + 1), includedData="FULFILLMENT")

    assert len(changed) > 20
    assert {o["orderId"] for o in found} == changed
    assert any(before[i]["orderStatus"] != after[i]["orderStatus"] for i in changed)


def test_live_orders_arrive_with_the_clock(
    make_server: Callable[..., SimulatorServer], connect: Callable[..., SpApi]
) -> None:
    server = make_server(orders=10, live_orders_per_hour=12)
    api = connect(server, server.settings.seller_id)

    server.simulator.advance_clock(5 * 3600)
    api.refresh()
    orders = search_all(api, createdAfter=LONG_AGO)

    assert 10 + 40 < len(orders) < 10 + 80


def test_new_seller_gets_its_own_orders(server: SimulatorServer) -> None:
    seller_id = new_seller(server, orders=25, marketplaces=(DE,))

    truth = server.simulator.ground_truth(seller_id)["orders"]

    assert len(truth) == 25
    assert {o["salesChannel"]["marketplaceId"] for o in truth} == {DE}


def test_added_orders_mix_with_live_arrivals(
    make_server: Callable[..., SimulatorServer], connect: Callable[..., SpApi]
) -> None:
    server = make_server(orders=5, live_orders_per_hour=6)
    api = connect(server, server.settings.seller_id)
    server.simulator.advance_clock(2 * 3600)
    added = {order.order_id for order in server.simulator.add_orders(api.seller_id, 3)}
    server.simulator.advance_clock(180)
    api.refresh()

    ids = [order["orderId"] for order in search_all(api, createdAfter=LONG_AGO)]

    assert len(ids) == len(set(ids))
    assert added <= set(ids)
    assert set(ids) == {o["orderId"] for o in searchable_truth(server, api.seller_id)}

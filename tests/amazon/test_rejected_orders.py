"""Orders Amazon sends that cannot be stored are set aside one by one, never failing a page:
unknown status, bad date, missing id, not even an object. A page whose envelope is unreadable
still fails as a whole."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from keybuzz.amazon.client import SpApiClient
from keybuzz.amazon.errors import AmazonMalformedResponse
from keybuzz.orders.records import OrderRecord, RejectedOrder
from keybuzz.simulator import SimulatorServer
from keybuzz.simulator.faults import NOT_A_DATE, FaultKind, ScriptedFault
from tests.amazon.conftest import Connect, all_orders, counts, new_seller, truth
from tests.amazon.test_normalize import V0, V2026, example

MockConnect = Callable[[Callable[[httpx.Request], httpx.Response]], SpApiClient]
RDT_PATH = "/tokens/2021-03-01/restrictedDataToken"


async def listed(
    client: SpApiClient, **options: Any
) -> tuple[list[OrderRecord], list[RejectedOrder]]:
    records: list[OrderRecord] = []
    rejected: list[RejectedOrder] = []
    async for page in client.list_order_records(all_orders(max_results_per_page=20), **options):
        records += page.records
        rejected += page.rejected
    return records, rejected


@pytest.mark.parametrize(
    ("api", "operation", "date_field", "id_field"),
    [
        ("v2026", "v2026.searchOrders", "createdTime", "orderId"),
        ("v0", "v0.getOrders", "PurchaseDate", "AmazonOrderId"),
    ],
)
async def test_an_order_with_a_bad_date_is_set_aside_and_its_page_kept(
    make_sim: Callable[..., SimulatorServer],
    connect: Connect,
    api: str,
    operation: str,
    date_field: str,
    id_field: str,
) -> None:
    server = make_sim()
    seller = new_seller(server, orders=50)
    expected = [o["orderId"] for o in truth(server, seller)]
    # The second page's first order comes with a creation date that is not a date.
    server.simulator.script_faults(
        [
            ScriptedFault(FaultKind.SLOW, operation),
            ScriptedFault(FaultKind.MALFORMED_ORDER, operation),
        ]
    )

    records, rejected = await listed(connect(server, seller), api=api)

    assert len(rejected) == 1
    bad = rejected[0]
    assert (bad.marketplace, bad.source, bad.external_order_id) == (
        "amazon",
        operation,
        expected[20],
    )
    assert bad.payload[date_field] == NOT_A_DATE
    assert bad.payload[id_field] == expected[20]
    assert bad.reason.startswith(date_field)  # where and why, never the value
    assert NOT_A_DATE not in bad.reason
    assert [r.external_order_id for r in records] == expected[:20] + expected[21:]
    assert all(r.enriched for r in records)
    assert counts(server, operation) == {"200": 3}


def v0_answer(request: httpx.Request, orders: Any) -> httpx.Response:
    """getOrders answered with ``orders``, and the restricted data token it asks first."""
    if request.url.path == RDT_PATH:
        return httpx.Response(200, json={"restrictedDataToken": "Atz.sprdt|x", "expiresIn": 3600})
    return httpx.Response(200, json=orders)


def v2026_page(*orders: Any) -> dict[str, Any]:
    return {"orders": list(orders), "createdBefore": "2026-06-01T00:00:00Z"}


async def test_unknown_status_missing_id_and_non_objects_are_set_aside(
    mock_connect: MockConnect,
) -> None:
    good = example(V2026, "getOrder", orderId="028-1234567-8901234")["order"]
    teleported = copy.deepcopy(good)
    teleported["orderId"] = "028-0000000-0000001"
    teleported["fulfillment"]["fulfillmentStatus"] = "TELEPORTED"
    anonymous = {key: value for key, value in good.items() if key != "orderId"}
    body = v2026_page(teleported, good, anonymous, "not an order", None)
    client = mock_connect(lambda request: httpx.Response(200, json=body))

    records, rejected = await listed(client)

    assert [r.external_order_id for r in records] == ["028-1234567-8901234"]
    assert [(r.external_order_id, r.reason) for r in rejected] == [
        (None, "orderId: missing"),
        (None, "not a JSON object"),
        (None, "not a JSON object"),
        ("028-0000000-0000001", "order 028-0000000-0000001: unknown order status 'TELEPORTED'"),
    ]
    assert rejected[0].payload == anonymous
    assert rejected[1].payload == {"order": "not an order"}
    assert rejected[3].payload == teleported


async def test_a_v0_page_of_enrichment_sets_aside_what_it_cannot_read(
    mock_connect: MockConnect,
) -> None:
    body = example(V0, "getOrders", CreatedAfter="TEST_CASE_200")
    orders = body["payload"]["Orders"]
    orders[0]["OrderStatus"] = "Teleported"
    client = mock_connect(lambda request: v0_answer(request, body))

    page = await client.enrichment_page(
        "v0", all_orders().window, marketplace_ids=["ATVPDKIKX0DER"]
    )

    assert [r.external_order_id for r in page.records] == [orders[1]["AmazonOrderId"]]
    assert [(r.source, r.external_order_id) for r in page.rejected] == [
        ("v0.getOrders", orders[0]["AmazonOrderId"])
    ]
    assert "unknown order status 'Teleported'" in page.rejected[0].reason


@pytest.mark.parametrize(
    "body",
    [
        {"orders": {"not": "a list"}},
        {"pagination": {"nextToken": "x"}},
        ["not", "an", "envelope"],
    ],
)
async def test_an_envelope_that_does_not_fit_still_fails_the_page(
    mock_connect: MockConnect, body: Any
) -> None:
    client = mock_connect(lambda request: httpx.Response(200, json=body))

    with pytest.raises(AmazonMalformedResponse, match=r"^v2026\.searchOrders: "):
        await listed(client)


async def test_a_v0_order_whose_items_are_unreadable_is_set_aside(
    mock_connect: MockConnect,
) -> None:
    orders = example(V0, "getOrders", CreatedAfter="TEST_CASE_200")
    first, second = (o["AmazonOrderId"] for o in orders["payload"]["Orders"])
    items = example(V0, "getOrderItems", orderId="TEST_CASE_200")

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path in ("/orders/v0/orders", RDT_PATH):
            return v0_answer(request, orders)
        if first in path:
            return httpx.Response(
                200, json={"payload": {"AmazonOrderId": first, "OrderItems": "?"}}
            )
        return httpx.Response(200, json={"payload": {**items["payload"], "AmazonOrderId": second}})

    records, rejected = await listed(mock_connect(handler), api="v0")

    assert [r.external_order_id for r in records] == [second]
    assert [(r.source, r.external_order_id) for r in rejected] == [("v0.getOrders", first)]
    assert "payload.OrderItems" in rejected[0].reason

"""Orders v2026-01-01 against the simulator: searchOrders pages, resumed from a saved position;
getOrder; the date rules applied for the caller."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from keybuzz.amazon import normalize
from keybuzz.amazon.orders_v2026 import SearchPosition
from keybuzz.simulator import SimulatorServer
from tests.amazon.conftest import FR, Connect, counts, new_seller, since, truth


async def test_search_lists_every_order_with_items(sim: SimulatorServer, connect: Connect) -> None:
    seller = new_seller(sim, orders=45)
    client = connect(sim, seller)
    expected = {o["orderId"]: o for o in truth(sim, seller)}

    pages = [
        page
        async for page in client.orders.search_orders(
            created_after=since(), marketplace_ids=[FR], max_results_per_page=20
        )
    ]

    assert [len(p.orders) for p in pages] == [20, 20, len(expected) - 40]
    assert pages[-1].position is None
    assert pages[-1].created_before is not None
    orders = [o for p in pages for o in p.orders]
    assert [o.order_id for o in orders] == list(expected)
    for order in orders:
        wanted = expected[order.order_id]
        assert [i.order_item_id for i in order.order_items] == [
            i["orderItemId"] for i in wanted["orderItems"]
        ]
        prices = [
            i.product.price.unit_price.amount
            for i in order.order_items
            if i.product.price and i.product.price.unit_price
        ]
        assert prices == [
            Decimal(i["product"]["price"]["unitPrice"]["amount"])
            for i in wanted["orderItems"]
            if "price" in i["product"]
        ]
        assert order.fulfillment is not None
        assert order.fulfillment.fulfillment_status == wanted["fulfillment"]["fulfillmentStatus"]


async def test_a_saved_position_resumes_the_search(sim: SimulatorServer, connect: Connect) -> None:
    seller = new_seller(sim, orders=50)
    expected = [o["orderId"] for o in truth(sim, seller)]
    first_run = connect(sim, seller)
    seen: list[str] = []
    saved = ""
    async for page in first_run.orders.search_orders(
        created_after=since(), max_results_per_page=15
    ):
        seen += [o.order_id for o in page.orders]
        assert page.position is not None
        saved = json.dumps(page.position.model_dump(mode="json"))
        if len(seen) == 30:
            break

    # Another process, another client: only the saved JSON carries over.
    second_run = connect(sim, seller)
    async for page in second_run.orders.search_orders(position=json.loads(saved)):
        seen += [o.order_id for o in page.orders]

    assert seen == expected
    assert SearchPosition.model_validate_json(saved).query.max_results_per_page == 15


async def test_get_order_with_and_without_included_data(
    sim: SimulatorServer, connect: Connect
) -> None:
    seller = new_seller(sim, orders=20)
    client = connect(sim, seller)
    wanted = next(
        o for o in truth(sim, seller) if o["fulfillment"]["fulfillmentStatus"] == "SHIPPED"
    )

    full = await client.orders.get_order(wanted["orderId"])
    bare = await client.orders.get_order(wanted["orderId"], included_data=())

    record = normalize.from_v2026(full)
    assert record.external_order_id == wanted["orderId"]
    assert record.total_amount == Decimal(wanted["proceeds"]["grandTotal"]["amount"])
    assert (
        record.fulfillment_channel
        == {"AMAZON": "AFN", "MERCHANT": "MFN"}[wanted["fulfillment"]["fulfilledBy"]]
    )
    assert (bare.fulfillment, bare.proceeds, bare.buyer) == (None, None, None)
    assert [i.order_item_id for i in bare.order_items] == [
        i["orderItemId"] for i in wanted["orderItems"]
    ]


async def test_upper_bound_of_now_is_made_legal(sim: SimulatorServer, connect: Connect) -> None:
    seller = new_seller(sim, orders=20)
    client = connect(sim, seller)
    now = datetime.now(UTC)

    pages = [
        p async for p in client.orders.search_orders(created_after=since(), created_before=now)
    ]

    assert pages[0].created_before is not None
    assert pages[0].created_before <= now - timedelta(minutes=2)
    assert sum(len(p.orders) for p in pages) == len(truth(sim, seller))


async def test_a_window_inside_the_last_two_minutes_asks_nothing(
    make_sim: Callable[..., SimulatorServer], connect: Connect
) -> None:
    server = make_sim()
    client = connect(server)

    pages = [
        p
        async for p in client.orders.search_orders(
            last_updated_after=datetime.now(UTC) - timedelta(seconds=30)
        )
    ]

    assert [(p.orders, p.position) for p in pages] == [([], None)]
    assert counts(server, "v2026.searchOrders") == {}


async def test_updates_since_a_watermark(
    make_sim: Callable[..., SimulatorServer], connect: Connect
) -> None:
    server = make_sim()
    seller = new_seller(server, orders=40)
    client = connect(server, seller)
    changed = truth(server, seller)[3]["orderId"]
    watermark = datetime.fromtimestamp(server.simulator.now() - 1, UTC)
    server.simulator.change_order(seller, changed)
    server.simulator.advance_clock(200)

    pages = [
        p
        async for p in client.orders.search_orders(
            last_updated_after=watermark - timedelta(seconds=200)
        )
    ]

    orders = [o for p in pages for o in p.orders]
    assert changed in {o.order_id for o in orders}
    assert all(o.last_updated_time >= watermark - timedelta(seconds=200) for o in orders)
    assert pages[-1].last_updated_before is not None
    assert pages[-1].last_updated_before > watermark

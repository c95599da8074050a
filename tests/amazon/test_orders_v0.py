"""Orders v0 against the simulator: getOrders pages resumed from a saved position, getOrder,
getOrderItems, and PII through one bulk restricted data token."""

from __future__ import annotations

import json
from collections.abc import Callable

from keybuzz.amazon import normalize
from keybuzz.simulator import SimulatorServer
from tests.amazon.conftest import FR, Connect, FakeClock, counts, new_seller, since, truth

RDT = "tokens.createRestrictedDataToken"
SHIPPING_ADDRESS_STATUSES = {"UNSHIPPED", "PARTIALLY_SHIPPED", "SHIPPED"}


async def test_pages_resume_from_a_saved_position(sim: SimulatorServer, connect: Connect) -> None:
    seller = new_seller(sim, orders=55)
    expected = [o["orderId"] for o in truth(sim, seller)]
    seen: list[str] = []
    saved = ""
    async for page in connect(sim, seller).orders_v0.get_orders(
        marketplace_ids=[FR], created_after=since(), max_results_per_page=20
    ):
        seen += [o.amazon_order_id for o in page.orders]
        assert page.position is not None
        saved = json.dumps(page.position.model_dump(mode="json"))
        break

    async for page in connect(sim, seller).orders_v0.get_orders(position=json.loads(saved)):
        seen += [o.amazon_order_id for o in page.orders]

    assert seen == expected
    # Simulator tokens are standard base64: "+", "/" and "=" went out percent-encoded.
    assert any(c in json.loads(saved)["next_token"] for c in "+/=")


async def test_buyer_and_address_come_through_one_bulk_rdt(
    make_sim: Callable[..., SimulatorServer], connect: Connect
) -> None:
    server = make_sim()
    seller = new_seller(server, orders=40)
    client = connect(server, seller)
    expected = {o["orderId"]: o for o in truth(server, seller)}

    orders = [
        o
        async for p in client.orders_v0.get_orders(
            marketplace_ids=[FR], created_after=since(), max_results_per_page=10
        )
        for o in p.orders
    ]
    one = await client.orders_v0.get_order(orders[0].amazon_order_id)

    assert counts(server, RDT) == {"200": 1}
    assert one.amazon_order_id == orders[0].amazon_order_id
    addressed = [
        o
        for o in orders
        if expected[o.amazon_order_id]["fulfillment"]["fulfillmentStatus"]
        in SHIPPING_ADDRESS_STATUSES
    ]
    assert addressed
    for order in addressed:
        wanted = expected[order.amazon_order_id]
        record = normalize.from_v0(order)
        assert record.customer_name == wanted["buyer"]["buyerName"]
        assert record.shipping_address is not None
        assert (
            record.shipping_address["addressLine1"]
            == wanted["recipient"]["deliveryAddress"]["addressLine1"]
        )


async def test_without_the_roles_orders_come_without_pii(
    make_sim: Callable[..., SimulatorServer], connect: Connect
) -> None:
    server = make_sim(pii_roles=[])
    seller = new_seller(server, orders=30)
    client = connect(server, seller)

    for _ in range(2):
        orders = [
            o
            async for p in client.orders_v0.get_orders(marketplace_ids=[FR], created_after=since())
            for o in p.orders
        ]
        assert len(orders) == len(truth(server, seller))
        assert all(o.buyer_info is None or o.buyer_info.buyer_name is None for o in orders)
        shipped = [o for o in orders if o.shipping_address is not None]
        assert shipped
        assert all(o.shipping_address.address_line1 is None for o in shipped)  # type: ignore[union-attr]

    # Asked once, refused once, not asked again within the hour.
    assert counts(server, RDT) == {"403": 1}


async def test_the_rdt_is_renewed_before_its_hour_is_up(
    make_sim: Callable[..., SimulatorServer], connect: Connect
) -> None:
    server = make_sim()
    clock = FakeClock()
    seller = new_seller(server, orders=10)
    client = connect(server, seller, clock=clock)
    order_id = truth(server, seller)[0]["orderId"]

    await client.orders_v0.get_order(order_id)
    clock.advance(3000)
    await client.orders_v0.get_order(order_id)
    assert counts(server, RDT) == {"200": 1}

    clock.advance(550)
    await client.orders_v0.get_order(order_id)
    assert counts(server, RDT) == {"200": 2}


async def test_items_come_from_every_page(
    make_sim: Callable[..., SimulatorServer], connect: Connect
) -> None:
    server = make_sim(order_items_page_size=1)
    seller = new_seller(server, orders=40)
    client = connect(server, seller)
    wanted = next(o for o in truth(server, seller) if len(o["orderItems"]) >= 3)

    items = await client.orders_v0.get_order_items(wanted["orderId"])

    assert [i.order_item_id for i in items] == [i["orderItemId"] for i in wanted["orderItems"]]
    assert [i.seller_sku for i in items] == [
        i["product"]["sellerSku"] for i in wanted["orderItems"]
    ]
    calls = counts(server, "v0.getOrderItems")
    assert calls == {"200": len(items)}


async def test_orders_by_id(sim: SimulatorServer, connect: Connect) -> None:
    seller = new_seller(sim, orders=30)
    wanted = [o["orderId"] for o in truth(sim, seller)[:5]]

    pages = [
        p
        async for p in connect(sim, seller).orders_v0.get_orders(
            marketplace_ids=[FR], amazon_order_ids=wanted
        )
    ]

    assert sorted(o.amazon_order_id for p in pages for o in p.orders) == sorted(wanted)

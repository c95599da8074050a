"""The per-connection facade: one order on demand, state shared through the registry."""

from __future__ import annotations

from decimal import Decimal

import httpx
from pydantic import SecretStr

from keybuzz.amazon.client import SpApiClient
from keybuzz.amazon.operations import GET_ORDER
from keybuzz.amazon.regions import Region
from keybuzz.amazon.registry import ConnectionRegistry
from keybuzz.simulator import SimulatorServer
from tests.amazon.conftest import Connect, DenyPaths, amazon_config, new_seller, truth

GET_ORDER_PREFIX = "/orders/2026-01-01/orders/"


async def test_one_order_record_on_demand(sim: SimulatorServer, connect: Connect) -> None:
    seller = new_seller(sim, orders=20)
    wanted = next(o for o in truth(sim, seller) if "proceeds" in o)

    record = await connect(sim, seller).get_order_record(wanted["orderId"])

    assert record.external_order_id == wanted["orderId"]
    assert record.total_amount == Decimal(wanted["proceeds"]["grandTotal"]["amount"])
    assert [i.external_item_id for i in record.items or ()] == [
        i["orderItemId"] for i in wanted["orderItems"]
    ]


async def test_one_order_record_through_v0_when_v2026_is_denied(
    sim: SimulatorServer, connect: Connect
) -> None:
    seller = new_seller(sim, orders=20)
    wanted = next(o for o in truth(sim, seller) if "proceeds" in o)
    transport = DenyPaths(GET_ORDER_PREFIX)
    async with httpx.AsyncClient(transport=transport) as http:
        record = await connect(sim, seller, through=http).get_order_record(wanted["orderId"])

    assert record.total_amount == Decimal(wanted["proceeds"]["grandTotal"]["amount"])
    assert len(record.items or ()) == len(wanted["orderItems"])
    assert transport.seen[GET_ORDER_PREFIX + wanted["orderId"]] == 1
    assert transport.seen[f"/orders/v0/orders/{wanted['orderId']}/orderItems"] == 1


async def test_clients_of_one_connection_share_its_state(
    sim: SimulatorServer, http: httpx.AsyncClient
) -> None:
    seller = new_seller(sim)
    token = SecretStr(sim.simulator.authorize(seller).value)
    registry = ConnectionRegistry()

    def client() -> SpApiClient:
        return SpApiClient(
            http,
            amazon_config(sim),
            region=Region.EU,
            refresh_token=token,
            connection_key=f"registry-{seller}",
            registry=registry,
        )

    first, second = client(), client()
    await first.sellers.get_marketplace_participations()
    await second.sellers.get_marketplace_participations()

    assert first.state is second.state
    assert first.transport.bucket(GET_ORDER) is second.transport.bucket(GET_ORDER)
    assert second.stats.requests["sellers.getMarketplaceParticipations"] == 1

"""The per-connection facade: one order on demand, state shared through the registry."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import httpx
import pytest
from pydantic import SecretStr

from keybuzz.amazon.client import SpApiClient
from keybuzz.amazon.errors import AmazonQuotaExhausted
from keybuzz.amazon.operations import GET_ORDER
from keybuzz.amazon.ratelimit import Priority
from keybuzz.amazon.regions import Region
from keybuzz.amazon.registry import ConnectionRegistry
from keybuzz.simulator import SimulatorServer
from tests.amazon.conftest import (
    Connect,
    DenyPaths,
    amazon_config,
    counts,
    new_seller,
    on_one_clock,
    sim_settings,
    truth,
)
from tests.fixtures.simulator import InProcessSimulator
from tests.fixtures.virtual_time import in_virtual_time

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


@in_virtual_time
async def test_a_refresh_with_the_quota_spent_fails_at_once_saying_when_to_come_back() -> None:
    loop = asyncio.get_running_loop()
    amazon = InProcessSimulator.start(sim_settings(rate_scale=1.0))  # getOrder: 0.5 rps, 30
    seller = new_seller(amazon, orders=40, days=20)
    ids = [order["orderId"] for order in truth(amazon, seller)]
    async with amazon.http() as http:
        client = on_one_clock(amazon, http, seller)
        await client.check_credentials()
        for order_id in ids[:29]:  # the burst, less the one-token reserve
            await client.get_order_record(order_id, max_wait=0)
        started = loop.time()
        waiting = client.next_token_in(GET_ORDER)

        with pytest.raises(AmazonQuotaExhausted) as caught:
            await client.get_order_record(ids[29], max_wait=1.0)
        assert loop.time() == started  # answered without waiting
        record = await client.get_order_record(ids[29], max_wait=5.0)

    assert waiting == pytest.approx(2.0, abs=0.01)  # a token every 2 s
    assert caught.value.retry_after == pytest.approx(waiting, abs=0.01)
    assert caught.value.status == 429
    assert caught.value.headers == {"Retry-After": "2"}
    assert record.external_order_id == ids[29]
    assert loop.time() - started >= 2.0 - 0.01
    assert counts(amazon, "v2026.getOrder") == {"200": 30}


@in_virtual_time
async def test_a_refresh_goes_before_a_backfill_waiting_on_the_same_bucket() -> None:
    loop = asyncio.get_running_loop()
    amazon = InProcessSimulator.start(sim_settings(rate_scale=10.0))  # getOrder: 5 rps, 30
    seller = new_seller(amazon, orders=60, days=20)
    ids = [order["orderId"] for order in truth(amazon, seller)]
    registry = ConnectionRegistry(clock=loop.time)
    async with amazon.http() as http:
        backfill = on_one_clock(amazon, http, seller, registry=registry, priority=Priority.BACKFILL)
        agent = on_one_clock(amazon, http, seller, registry=registry, priority=Priority.INTERACTIVE)
        await backfill.check_credentials()
        done: list[str] = []

        async def fetch(client: SpApiClient, order_id: str, who: str) -> None:
            await client.get_order_record(order_id)
            done.append(who)

        backfilling = [asyncio.ensure_future(fetch(backfill, i, "backfill")) for i in ids[:50]]
        await asyncio.sleep(0.1)  # the burst is gone, 20 backfill requests wait
        await fetch(agent, ids[50], "agent")
        await asyncio.gather(*backfilling)

    # The burst went to the backfill (less the reserve); the agent's request then took the next
    # token, ahead of the 20-odd backfill requests already waiting.
    assert done.count("backfill") - done.index("agent") >= 20
    assert len(done) == 51
    assert counts(amazon, "v2026.getOrder") == {"200": 51}

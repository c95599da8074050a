"""Failures on the wire: storms the client rides out with bounded retries, answers it must not
retry, and payloads it cannot read."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

import httpx
import pytest
from pydantic import SecretStr

from keybuzz.amazon.client import SpApiClient
from keybuzz.amazon.errors import (
    AmazonAccessDenied,
    AmazonInvalidRequest,
    AmazonMalformedResponse,
    AmazonNotFound,
    AmazonThrottled,
    AmazonUnavailable,
)
from keybuzz.amazon.operations import GET_MARKETPLACE_PARTICIPATIONS
from keybuzz.amazon.registry import ConnectionRegistry
from keybuzz.amazon.retry import Failure, RetryPolicy
from keybuzz.amazon.tokens import BULK_ORDER_RESOURCES
from keybuzz.simulator import FaultSettings, SimulatorServer
from keybuzz.simulator.faults import FaultKind, ScriptedFault
from tests.amazon.conftest import (
    DE,
    MOCK_SPAPI,
    Connect,
    amazon_config,
    counts,
    new_seller,
    on_one_clock,
    sim_settings,
    since,
    truth,
)
from tests.fixtures.simulator import InProcessSimulator
from tests.fixtures.virtual_time import in_virtual_time

PARTICIPATIONS = "sellers.getMarketplaceParticipations"


@pytest.mark.slow
async def test_a_storm_of_500s_drops_timeouts_and_broken_bodies_is_ridden_out(
    make_sim: Callable[..., SimulatorServer], connect: Connect
) -> None:
    faults = FaultSettings(
        error_rate=0.15,
        drop_rate=0.1,
        malformed_json_rate=0.05,
        slow_rate=0.05,
        slow_seconds=6.0,
        seed=4,
        operations=["v2026.searchOrders", "v2026.getOrder"],
    )
    server = make_sim(faults=faults)
    seller = new_seller(server, orders=150, days=30)
    client = connect(
        server,
        seller,
        config=amazon_config(server, spapi_timeout_seconds=2.0),
        retry=RetryPolicy(attempts=10, base_delay=0.01, max_delay=0.05),
    )
    expected = truth(server, seller)

    listed = [
        order
        async for page in client.orders.search_orders(
            created_after=since(), max_results_per_page=10
        )
        for order in page.orders
    ]
    fetched = await asyncio.gather(*(client.orders.get_order(o["orderId"]) for o in expected[:40]))

    assert [o.order_id for o in listed] == [o["orderId"] for o in expected]
    assert [o.order_id for o in fetched] == [o["orderId"] for o in expected[:40]]
    faults_seen = server.simulator.counters()["v2026.getOrder"]["faults"]
    assert client.stats.retried >= sum(faults_seen.values()) > 0
    assert client.stats.retried <= 9 * (len(expected) // 10 + 1 + 40)


async def test_retries_are_bounded(
    make_sim: Callable[..., SimulatorServer], connect: Connect
) -> None:
    server = make_sim()
    client = connect(server)
    await client.check_credentials()
    server.simulator.script_faults([ScriptedFault(FaultKind.INTERNAL_ERROR, PARTICIPATIONS)] * 8)

    with pytest.raises(AmazonUnavailable, match=r"HTTP 50[03] after 8 tries"):
        await client.sellers.get_marketplace_participations()

    assert counts(server, PARTICIPATIONS) == {"500": 8}
    assert await client.sellers.get_marketplace_participations()


async def test_timeouts_that_never_end_become_unavailable(
    make_sim: Callable[..., SimulatorServer], connect: Connect
) -> None:
    server = make_sim(
        faults=FaultSettings(slow_rate=1.0, slow_seconds=5.0, operations=[PARTICIPATIONS])
    )
    seller = new_seller(server)
    token = SecretStr(server.simulator.authorize(seller).value)
    registry = ConnectionRegistry()
    # The access token first, at the usual timeout: only the SP-API call runs into the short one.
    await connect(server, seller, refresh_token=token, registry=registry).check_credentials()
    client = connect(
        server,
        seller,
        refresh_token=token,
        registry=registry,
        config=amazon_config(server, spapi_timeout_seconds=0.5),
        retry=RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.01),
    )

    with pytest.raises(AmazonUnavailable, match=r"ReadTimeout .* after 3 tries"):
        await client.sellers.get_marketplace_participations()

    assert client.stats.requests[PARTICIPATIONS] == 3


@in_virtual_time
async def test_a_first_429_is_retried_at_once_and_repeats_back_off() -> None:
    loop = asyncio.get_running_loop()
    policy = RetryPolicy(attempts=4, base_delay=1.0, max_delay=1.0)  # backoff: 0.5 to 1 s
    tries: list[float] = []

    async def throttled(number: int) -> Failure:
        tries.append(loop.time())
        return Failure("429 QuotaExceeded", AmazonThrottled, throttled=True)

    with pytest.raises(AmazonThrottled, match=r"^op: still throttled after 4 tries$"):
        await policy.run("op", throttled)

    waits = [later - earlier for earlier, later in itertools.pairwise(tries)]
    assert len(waits) == 3
    assert waits[0] == 0.0  # the drained bucket alone makes it wait, in real use
    assert all(0.5 <= wait <= 1.0 for wait in waits[1:])


@in_virtual_time
async def test_another_app_sharing_the_quota_causes_429s_that_are_ridden_out() -> None:
    # On one virtual clock with the simulator: both bursts land together, whatever the machine.
    loop = asyncio.get_running_loop()
    amazon = InProcessSimulator.start(sim_settings(rate_scale=100.0))
    seller = new_seller(amazon, orders=70, days=20)
    ids = [order["orderId"] for order in truth(amazon, seller)]
    async with amazon.http() as http:
        # Two registries: two apps, each with its own idea of the seller's bucket at Amazon.
        ours, theirs = (
            on_one_clock(amazon, http, seller, registry=ConnectionRegistry(clock=loop.time))
            for _ in range(2)
        )

        results = await asyncio.gather(
            *(ours.orders_v0.get_order_items(i, with_pii=False) for i in ids),
            *(theirs.orders_v0.get_order_items(i, with_pii=False) for i in ids),
        )

    assert len(results) == 2 * len(ids)
    assert all(items for items in results)
    throttled = counts(amazon, "v0.getOrderItems").get("429", 0)
    assert throttled == ours.stats.throttled + theirs.stats.throttled > 0


async def test_bad_request_is_a_typed_error_not_retried(
    make_sim: Callable[..., SimulatorServer], connect: Connect
) -> None:
    server = make_sim()
    client = connect(server)

    with pytest.raises(AmazonInvalidRequest) as caught:
        async for _ in client.orders.search_orders(created_after=since(), marketplace_ids=[DE]):
            pass

    assert "InvalidInput" in str(caught.value)
    assert counts(server, "v2026.searchOrders") == {"400": 1}


async def test_unknown_order_is_not_found(sim: SimulatorServer, connect: Connect) -> None:
    client = connect(sim)

    with pytest.raises(AmazonNotFound) as caught:
        await client.orders.get_order("403-0000000-0000000")

    assert caught.value.status == 404
    assert "403-0000000-0000000" in str(caught.value)


async def test_denied_even_with_a_fresh_token_is_access_denied(
    make_sim: Callable[..., SimulatorServer], connect: Connect
) -> None:
    server = make_sim(pii_roles=[])
    client = connect(server)
    await client.check_credentials()

    with pytest.raises(AmazonAccessDenied):
        await client.tokens.create_restricted_data_token(restricted_resources=BULK_ORDER_RESOURCES)

    # Once with the cached token, once more with a fresh one.
    assert counts(server, "tokens.createRestrictedDataToken") == {"403": 2}
    assert counts(server, "lwa.token") == {"200": 2}


async def test_a_payload_that_does_not_fit_is_malformed_and_names_no_value(
    mock_connect: Callable[[Callable[[httpx.Request], httpx.Response]], SpApiClient],
) -> None:
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        order = {
            "AmazonOrderId": "902-1845936-5435065",
            "PurchaseDate": "2026-01-01T00:00:00Z",
            "LastUpdateDate": "2026-01-01T00:00:00Z",
            "OrderStatus": "Unshipped",
            "BuyerInfo": {"BuyerEmail": ["jane.doe@example.com"]},
        }
        return httpx.Response(200, json={"payload": order})

    client = mock_connect(handler)

    with pytest.raises(AmazonMalformedResponse) as caught:
        await client.orders_v0.get_order("902-1845936-5435065", with_pii=False)

    assert "payload.BuyerInfo.BuyerEmail: string_type" in str(caught.value)
    assert "jane" not in str(caught.value)
    assert sent == ["/orders/v0/orders/902-1845936-5435065"]


async def test_the_header_rate_is_adopted(
    mock_connect: Callable[[Callable[[httpx.Request], httpx.Response]], SpApiClient],
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["x-amz-access-token"] == "Atza|mock-access"
        assert str(request.url).startswith(MOCK_SPAPI)
        return httpx.Response(200, json={"payload": []}, headers={"x-amzn-RateLimit-Limit": "2.5"})

    client = mock_connect(handler)

    assert await client.sellers.get_marketplace_participations() == []
    assert client.transport.bucket(GET_MARKETPLACE_PARTICIPATIONS).rate == 2.5

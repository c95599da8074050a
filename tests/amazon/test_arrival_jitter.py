"""No 429 when requests reach Amazon late and bunched, as on a loaded machine.

A request the client lets go reaches Amazon's bucket some time later, not always equally late:
here the server takes nothing for a while every second, then everything that arrived meanwhile
at once, and every request is a few milliseconds late besides (seeded, so every run is the
same). On a virtual clock shared with the simulator's buckets, the outcome is decided by the
code alone: sending through ``TokenBucket.request`` (a reserve, and no more requests in flight
than it covers) gets no 429; sending as soon as a token is there, with the same reserve (the
client before this change), gets 429s.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import httpx

from keybuzz.amazon.operations import GET_ORDER_ITEMS, UsagePlan
from keybuzz.amazon.ratelimit import TokenBucket
from keybuzz.simulator.ratelimit import RateLimiter
from tests.amazon.conftest import all_orders, counts, new_seller, on_one_clock, sim_settings, truth
from tests.fixtures.simulator import InProcessSimulator
from tests.fixtures.virtual_time import in_virtual_time

RATE_SCALE = 200.0  # getOrderItems: 100 requests a second, burst 30
STALL_EVERY = 1.0
STALL_FOR = 0.35  # 35 requests' worth at 100 rps: more than the burst


class LateArrivals:
    """When a request sent at ``now`` reaches the server: after the stall it falls into, if
    any, plus up to ``spread`` seconds."""

    def __init__(self, *, spread: float = 0.005, seed: int = 7) -> None:
        self._random = random.Random(seed)
        self._spread = spread
        self.bunches: Counter[int] = Counter()
        """Requests held by each stall (numbered from 0), released together at its end."""

    def delay(self, now: float) -> float:
        into = now % STALL_EVERY
        late = self._random.uniform(0, self._spread)
        if into < STALL_FOR:
            self.bunches[int(now // STALL_EVERY)] += 1
            return STALL_FOR - into + late
        return late


class LateTransport(httpx.AsyncBaseTransport):
    """The in-process simulator, reached late (``LateArrivals``)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, arrivals: LateArrivals) -> None:
        self._inner = inner
        self._arrivals = arrivals

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(self._arrivals.delay(asyncio.get_running_loop().time()))
        return await self._inner.handle_async_request(request)


async def throttled_by_amazon(*, through_slots: bool, requests: int = 800) -> int:
    """Requests that find the simulator's bucket empty when each is sent as soon as the client's
    bucket allows: through ``request()`` (held until answered) or ``acquire()`` alone."""
    loop = asyncio.get_running_loop()
    amazon = RateLimiter(loop.time, rate_scale=RATE_SCALE)
    plan = amazon.plan(GET_ORDER_ITEMS.name)
    ours = TokenBucket(UsagePlan(plan.rate, plan.burst), clock=loop.time)
    arrivals = LateArrivals()
    refused = 0

    async def reach_amazon() -> None:
        nonlocal refused
        await asyncio.sleep(arrivals.delay(loop.time()))
        if not amazon.try_acquire("A1", GET_ORDER_ITEMS.name):
            refused += 1

    async def one() -> None:
        if through_slots:
            async with ours.request():
                await reach_amazon()
        else:
            await ours.acquire()
            await reach_amazon()

    await asyncio.gather(*(one() for _ in range(requests)))
    assert ours.reserve == 14.5  # the same reserve both ways: the old one, at this rate
    assert max(arrivals.bunches.values()) >= 10  # stalls do bunch arrivals
    return refused


@in_virtual_time
async def test_requests_in_flight_bounded_by_the_reserve_are_never_throttled() -> None:
    assert await throttled_by_amazon(through_slots=True) == 0


@in_virtual_time
async def test_the_reserve_alone_lets_bunched_arrivals_be_throttled() -> None:
    assert await throttled_by_amazon(through_slots=False) > 0


@in_virtual_time
async def test_a_listing_reaching_amazon_late_and_bunched_gets_no_429() -> None:
    amazon = InProcessSimulator.start(sim_settings(rate_scale=RATE_SCALE))
    seller = new_seller(amazon, orders=700, days=60)
    arrivals = LateArrivals()
    transport = LateTransport(httpx.ASGITransport(app=amazon.app), arrivals)
    async with httpx.AsyncClient(transport=transport) as http:
        client = on_one_clock(amazon, http, seller)

        orders = [
            record.external_order_id
            async for page in client.list_order_records(all_orders(), api="v0")
            for record in page.records
        ]

    assert orders == [order["orderId"] for order in truth(amazon, seller)]
    assert counts(amazon, "v0.getOrderItems") == {"200": len(orders)}
    assert client.stats.throttled == 0
    assert len(arrivals.bunches) >= 5  # several stalls during the run ...
    assert max(arrivals.bunches.values()) >= 10  # ... each taking a bunch of requests at once
    items = client.transport.bucket(GET_ORDER_ITEMS)
    assert (items.rate, items.max_in_flight) == (100.0, 14)

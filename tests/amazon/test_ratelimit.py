"""Token buckets that wait before sending: no 429 in normal operation, one bucket per
(connection, operation), separate buckets in parallel."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from pydantic import SecretStr

from keybuzz.amazon.operations import GET_ORDER, GET_ORDER_ITEMS, UsagePlan
from keybuzz.amazon.ratelimit import TokenBucket
from keybuzz.amazon.registry import ConnectionRegistry
from keybuzz.simulator import SimulatorServer
from tests.amazon.conftest import FR, Connect, counts, new_seller, since, truth


async def stamps(bucket: TokenBucket, count: int) -> list[float]:
    started = time.perf_counter()
    moments: list[float] = []

    async def one() -> None:
        await bucket.acquire()
        moments.append(time.perf_counter() - started)

    await asyncio.gather(*(one() for _ in range(count)))
    return moments


async def test_burst_goes_at_once_then_requests_wait_for_tokens() -> None:
    bucket = TokenBucket(UsagePlan(rate=20.0, burst=3), jitter_allowance=0)

    moments = await stamps(bucket, 7)

    assert all(moment < 0.02 for moment in moments[:3])
    for index in range(3, 7):
        assert moments[index] >= (index - 2) * 0.05 - 0.005
    assert moments[-1] < 0.35


async def test_waiters_are_served_in_arrival_order() -> None:
    bucket = TokenBucket(UsagePlan(rate=200.0, burst=1), jitter_allowance=0)
    served: list[int] = []

    async def one(number: int) -> None:
        await bucket.acquire()
        served.append(number)

    await asyncio.gather(*(one(n) for n in range(10)))

    assert served == list(range(10))


async def test_a_new_rate_reschedules_waiters_at_once() -> None:
    bucket = TokenBucket(UsagePlan(rate=0.1, burst=1), jitter_allowance=0)
    await bucket.acquire()
    waiting = asyncio.ensure_future(bucket.acquire())
    await asyncio.sleep(0.02)
    assert not waiting.done()

    started = time.perf_counter()
    bucket.set_rate(100.0)
    await waiting

    assert time.perf_counter() - started < 0.1


async def test_a_429_drains_the_bucket() -> None:
    bucket = TokenBucket(UsagePlan(rate=20.0, burst=10), jitter_allowance=0)
    await bucket.acquire()
    bucket.drain()

    started = time.perf_counter()
    await bucket.acquire()

    assert time.perf_counter() - started >= 0.045


async def test_a_cancelled_waiter_does_not_hold_up_the_queue() -> None:
    bucket = TokenBucket(UsagePlan(rate=50.0, burst=1), jitter_allowance=0)
    await bucket.acquire()
    first = asyncio.ensure_future(bucket.acquire())
    second = asyncio.ensure_future(bucket.acquire())
    await asyncio.sleep(0)
    first.cancel()

    await asyncio.wait_for(second, 0.2)

    assert first.cancelled()


def test_jitter_reserve_stays_under_half_the_burst() -> None:
    assert TokenBucket(UsagePlan(rate=2.0, burst=30)).reserve == 1.0
    assert TokenBucket(UsagePlan(rate=100.0, burst=30)).reserve == 14.5
    assert TokenBucket(UsagePlan(rate=0.0056, burst=20)).reserve < 0.01


def test_buckets_belong_to_a_connection_key() -> None:
    registry = ConnectionRegistry()
    first = registry.state("tenant-a", refresh_token=SecretStr("Atzr|1"))
    again = registry.state("tenant-a", refresh_token=SecretStr("Atzr|1"))
    other = registry.state("tenant-b", refresh_token=SecretStr("Atzr|1"))

    assert again.buckets.bucket(GET_ORDER) is first.buckets.bucket(GET_ORDER)
    assert other.buckets.bucket(GET_ORDER) is not first.buckets.bucket(GET_ORDER)
    assert first.buckets.bucket(GET_ORDER_ITEMS) is not first.buckets.bucket(GET_ORDER)


def test_reconnecting_keeps_the_buckets_and_drops_the_tokens() -> None:
    registry = ConnectionRegistry()
    before = registry.state("tenant-a", refresh_token=SecretStr("Atzr|old"))
    tokens, bucket = before.access_token, before.buckets.bucket(GET_ORDER)

    after = registry.state("tenant-a", refresh_token=SecretStr("Atzr|new"))

    assert after.buckets.bucket(GET_ORDER) is bucket
    assert after.access_token is not tokens


async def test_listing_sends_no_request_amazon_would_throttle(
    make_sim: Callable[..., SimulatorServer], connect: Connect
) -> None:
    server = make_sim(rate_scale=400.0)
    seller = new_seller(server, orders=260, days=60)
    client = connect(server, seller)

    started = time.perf_counter()
    orders = [
        record
        async for page in client.list_order_records(
            marketplace_ids=[FR], created_after=since(), api="v0"
        )
        for record in page.records
    ]
    elapsed = time.perf_counter() - started

    assert len(orders) == len(truth(server, seller))
    assert await counts(server, "v0.getOrderItems", {"200": len(orders)}) == {"200": len(orders)}
    assert client.stats.throttled == 0
    lower_bound = (len(orders) - 30) / (0.5 * 400)
    assert lower_bound <= elapsed < lower_bound * 1.5 + 0.5
    assert client.transport.bucket(GET_ORDER_ITEMS).rate == 200.0


async def test_operations_on_separate_buckets_run_at_the_same_time(
    make_sim: Callable[..., SimulatorServer], connect: Connect
) -> None:
    server = make_sim(rate_scale=100.0)
    seller = new_seller(server, orders=80, days=20)
    client = connect(server, seller)
    ids = [order["orderId"] for order in truth(server, seller)]
    await client.sellers.get_marketplace_participations()

    started = time.perf_counter()
    await asyncio.gather(
        *(client.orders.get_order(order_id) for order_id in ids),
        *(client.orders_v0.get_order_items(order_id) for order_id in ids),
    )
    elapsed = time.perf_counter() - started

    one_operation = (len(ids) - 30) / (0.5 * 100)
    # One after the other would take twice as long.
    assert one_operation <= elapsed < 2 * one_operation
    assert client.stats.throttled == 0


async def test_two_sellers_do_not_share_a_bucket(
    make_sim: Callable[..., SimulatorServer], connect: Connect
) -> None:
    server = make_sim(rate_scale=100.0)
    sellers = [new_seller(server, orders=80, days=20, seed=n) for n in (1, 2)]
    clients = [connect(server, seller) for seller in sellers]
    work = [
        (c, [o["orderId"] for o in truth(server, s)]) for c, s in zip(clients, sellers, strict=True)
    ]

    started = time.perf_counter()
    await asyncio.gather(*(c.orders.get_order(i) for c, ids in work for i in ids))
    elapsed = time.perf_counter() - started

    one_seller = (max(len(ids) for _, ids in work) - 30) / (0.5 * 100)
    assert elapsed < 2 * one_seller
    assert sum(c.stats.throttled for c in clients) == 0

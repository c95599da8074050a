"""Token buckets that wait before sending: no 429 in normal operation, one bucket per
(connection, operation), separate buckets in parallel.

The tests that wait run on a virtual clock (``in_virtual_time``), so they check when the
buckets let requests go, as the code decides it, never how long a busy machine took. Those
against the simulator run it in process on that same clock, so Amazon's buckets and the
client's refill in step and a request the client sends too early is a 429, always.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Iterable

import pytest
from pydantic import SecretStr

from keybuzz.amazon.errors import AmazonQuotaExhausted
from keybuzz.amazon.operations import GET_ORDER, GET_ORDER_ITEMS, UsagePlan
from keybuzz.amazon.ratelimit import BucketSet, Priority, TokenBucket
from keybuzz.amazon.registry import ConnectionRegistry
from tests.amazon.conftest import (
    FakeClock,
    all_orders,
    counts,
    new_seller,
    on_one_clock,
    sim_settings,
    truth,
)
from tests.fixtures.simulator import InProcessSimulator
from tests.fixtures.virtual_time import in_virtual_time

# When float rounding leaves a refilled token a hair short, the bucket's timer re-arms 0.5 ms
# later: departures are exact to within that.
TICK = 0.001


def bucket_on_loop_time(rate: float, burst: int) -> TokenBucket:
    clock = asyncio.get_running_loop().time
    return TokenBucket(UsagePlan(rate=rate, burst=burst), clock=clock, jitter_allowance=0)


async def departures(bucket: TokenBucket, count: int) -> list[float]:
    """When each of ``count`` requests, all waiting from the start, may leave."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    moments: list[float] = []

    async def one() -> None:
        await bucket.acquire()
        moments.append(loop.time() - started)

    await asyncio.gather(*(one() for _ in range(count)))
    return moments


async def seconds_for(calls: Iterable[Awaitable[object]]) -> float:
    """How long the calls, sent all at once, take on the loop's clock."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.gather(*calls)
    return loop.time() - started


@in_virtual_time
async def test_burst_goes_at_once_then_requests_wait_for_tokens() -> None:
    bucket = bucket_on_loop_time(rate=20.0, burst=3)

    moments = await departures(bucket, 7)

    assert moments == pytest.approx([0, 0, 0, 0.05, 0.10, 0.15, 0.20], abs=TICK)


@in_virtual_time
async def test_waiters_are_served_in_arrival_order() -> None:
    bucket = bucket_on_loop_time(rate=200.0, burst=1)
    served: list[int] = []

    async def one(number: int) -> None:
        await bucket.acquire()
        served.append(number)

    await asyncio.gather(*(one(n) for n in range(10)))

    assert served == list(range(10))


@in_virtual_time
async def test_a_new_rate_reschedules_waiters_at_once() -> None:
    loop = asyncio.get_running_loop()
    bucket = bucket_on_loop_time(rate=0.1, burst=1)
    await bucket.acquire()
    waiting = asyncio.ensure_future(bucket.acquire())
    await asyncio.sleep(0.02)
    assert not waiting.done()

    bucket.set_rate(100.0)
    await waiting

    # The rest of the token at the new rate, not the 10 s the old rate asked for.
    assert loop.time() == pytest.approx(0.02 + (1 - 0.02 * 0.1) / 100.0, abs=TICK)


@in_virtual_time
async def test_a_429_drains_the_bucket() -> None:
    loop = asyncio.get_running_loop()
    bucket = bucket_on_loop_time(rate=20.0, burst=10)
    await bucket.acquire()
    bucket.drain()

    started = loop.time()
    await bucket.acquire()

    # One token's refill, where the nine tokens left before the 429 would have let it go at once.
    assert loop.time() - started == pytest.approx(1 / 20.0, abs=TICK)


@in_virtual_time
async def test_a_cancelled_waiter_does_not_hold_up_the_queue() -> None:
    loop = asyncio.get_running_loop()
    bucket = bucket_on_loop_time(rate=50.0, burst=1)
    await bucket.acquire()
    first = asyncio.ensure_future(bucket.acquire())
    second = asyncio.ensure_future(bucket.acquire())
    await asyncio.sleep(0)
    first.cancel()

    # Virtual seconds: a waiter nobody wakes fails here instead of hanging the test.
    await asyncio.wait_for(second, 1.0)

    assert first.cancelled()
    assert loop.time() == pytest.approx(1 / 50.0, abs=TICK)


def test_jitter_reserve_stays_under_half_the_burst_and_covers_the_requests_in_flight() -> None:
    buckets = [
        TokenBucket(UsagePlan(rate=2.0, burst=30)),
        TokenBucket(UsagePlan(rate=10.0, burst=30)),
        TokenBucket(UsagePlan(rate=100.0, burst=30)),
        TokenBucket(UsagePlan(rate=0.0056, burst=20)),
    ]

    # Half a second of tokens, at most half the burst, and at least one token ...
    assert [b.reserve for b in buckets] == [1.0, 5.0, 14.5, 1.0]
    # ... which covers every request in flight (see the module's docstring).
    assert [b.max_in_flight for b in buckets] == [1, 5, 14, 1]


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


@in_virtual_time
async def test_listing_sends_no_request_amazon_would_throttle() -> None:
    loop = asyncio.get_running_loop()
    amazon = InProcessSimulator.start(sim_settings(rate_scale=400.0))
    seller = new_seller(amazon, orders=260, days=60)
    async with amazon.http() as http:
        client = on_one_clock(amazon, http, seller)

        started = loop.time()
        orders = [
            record
            async for page in client.list_order_records(all_orders(), api="v0")
            for record in page.records
        ]
        elapsed = loop.time() - started

    items = client.transport.bucket(GET_ORDER_ITEMS)
    assert len(orders) == len(truth(amazon, seller))
    assert counts(amazon, "v0.getOrderItems") == {"200": len(orders)}
    assert client.stats.throttled == 0
    assert items.rate == 200.0  # Amazon's rate at rate_scale 400, adopted from its answers
    # getOrderItems sets the pace (getOrders pages are listed meanwhile): the burst at once,
    # the jitter reserve once, then one request per token.
    lower_bound = (len(orders) - GET_ORDER_ITEMS.plan.burst) / items.rate
    assert elapsed == pytest.approx(lower_bound + items.reserve / items.rate, abs=0.01)


@in_virtual_time
async def test_operations_on_separate_buckets_run_at_the_same_time() -> None:
    amazon = InProcessSimulator.start(sim_settings(rate_scale=100.0))
    # Two sellers with the same orders: one runs one operation, the other two side by side.
    sellers = [new_seller(amazon, orders=80, days=20) for _ in range(2)]
    ids = [[order["orderId"] for order in truth(amazon, seller)] for seller in sellers]
    assert len(ids[0]) == len(ids[1])
    async with amazon.http() as http:
        one, two = (on_one_clock(amazon, http, seller) for seller in sellers)
        for client in (one, two):
            await client.check_credentials()

        one_operation = await seconds_for(one.orders.get_order(i) for i in ids[0])
        two_operations = await seconds_for(
            [
                *(two.orders.get_order(i) for i in ids[1]),
                *(two.orders_v0.get_order_items(i) for i in ids[1]),
            ]
        )

    assert one_operation >= (len(ids[0]) - GET_ORDER.plan.burst) / (0.5 * 100)
    # One after the other would take twice as long.
    assert two_operations == pytest.approx(one_operation, abs=0.01)
    assert one.stats.throttled == two.stats.throttled == 0
    assert counts(amazon, "v2026.getOrder") == {"200": 2 * len(ids[0])}


@in_virtual_time
async def test_two_sellers_do_not_share_a_bucket() -> None:
    loop = asyncio.get_running_loop()
    amazon = InProcessSimulator.start(sim_settings(rate_scale=100.0))
    sellers = [new_seller(amazon, orders=80, days=20, seed=n) for n in (1, 2, 3)]
    ids = [[order["orderId"] for order in truth(amazon, seller)][:60] for seller in sellers]
    # One process's registry, as in production: connections are kept apart by their key.
    registry = ConnectionRegistry(clock=loop.time)
    async with amazon.http() as http:
        clients = [on_one_clock(amazon, http, seller, registry=registry) for seller in sellers]
        for client in clients:
            await client.check_credentials()

        one_seller = await seconds_for(clients[0].orders.get_order(i) for i in ids[0])
        two_sellers = await seconds_for(
            client.orders.get_order(i)
            for client, seller_ids in zip(clients[1:], ids[1:], strict=True)
            for i in seller_ids
        )

    assert [len(seller_ids) for seller_ids in ids] == [60, 60, 60]
    assert one_seller >= (60 - GET_ORDER.plan.burst) / (0.5 * 100)
    # A shared bucket would take twice as long.
    assert two_sellers == pytest.approx(one_seller, abs=0.01)
    assert sum(client.stats.throttled for client in clients) == 0


@in_virtual_time
async def test_waiters_of_higher_priority_go_first() -> None:
    bucket = bucket_on_loop_time(rate=100.0, burst=1)
    await bucket.acquire()  # the burst is gone: everyone below waits
    served: list[str] = []

    async def one(name: str, priority: Priority) -> None:
        await bucket.acquire(priority=priority)
        served.append(name)

    await asyncio.gather(
        one("backfill-1", Priority.BACKFILL),
        one("sync-1", Priority.SYNC),
        one("backfill-2", Priority.BACKFILL),
        one("refresh", Priority.INTERACTIVE),
        one("sync-2", Priority.SYNC),
    )

    assert served == ["refresh", "sync-1", "sync-2", "backfill-1", "backfill-2"]


@in_virtual_time
async def test_next_token_in_counts_the_waiters_ahead_and_takes_nothing() -> None:
    bucket = bucket_on_loop_time(rate=10.0, burst=2)
    assert bucket.next_token_in() == 0.0
    await bucket.acquire()
    await bucket.acquire()
    backfill = [asyncio.ensure_future(bucket.acquire(priority=Priority.BACKFILL)) for _ in range(3)]
    await asyncio.sleep(0)

    # Three backfill requests wait for a token each: a backfill request asked now is fourth,
    # a sync request first.
    assert bucket.next_token_in(Priority.BACKFILL) == pytest.approx(0.4)
    assert bucket.next_token_in(Priority.SYNC) == pytest.approx(0.1)
    assert bucket.tokens == pytest.approx(0.0)
    await asyncio.gather(*backfill)


@in_virtual_time
async def test_max_wait_fails_at_once_instead_of_waiting() -> None:
    loop = asyncio.get_running_loop()
    bucket = bucket_on_loop_time(rate=0.5, burst=2)
    await bucket.acquire()
    await bucket.acquire()

    with pytest.raises(AmazonQuotaExhausted) as caught:
        await bucket.acquire(max_wait=1.0)

    assert loop.time() == 0.0
    assert caught.value.retry_after == pytest.approx(2.0)
    assert (caught.value.status, caught.value.code) == (429, "amazon_quota_exhausted")
    assert caught.value.headers == {"Retry-After": "2"}
    # Nothing was taken: the next token is still 2 s away, and a patient caller gets it then.
    await bucket.acquire(max_wait=2.5)
    assert loop.time() == pytest.approx(2.0, abs=TICK)


@in_virtual_time
async def test_requests_in_flight_never_exceed_what_the_reserve_covers() -> None:
    clock = asyncio.get_running_loop().time
    bucket = TokenBucket(UsagePlan(rate=1000.0, burst=30), clock=clock)
    in_flight: list[int] = []

    async def one() -> None:
        async with bucket.request():
            in_flight.append(bucket.in_flight)
            await asyncio.sleep(0.05)  # Amazon answers in 50 ms

    await asyncio.gather(*(one() for _ in range(100)))

    assert bucket.max_in_flight == 14
    assert max(in_flight) == 14
    assert bucket.in_flight == 0


@in_virtual_time
async def test_a_cancelled_request_frees_its_slot() -> None:
    clock = asyncio.get_running_loop().time
    bucket = TokenBucket(UsagePlan(rate=2.0, burst=30), clock=clock)  # one request in flight
    assert bucket.max_in_flight == 1

    async def one(seconds: float) -> None:
        async with bucket.request():
            await asyncio.sleep(seconds)

    stuck = asyncio.ensure_future(one(3600))
    waiting = asyncio.ensure_future(one(0))
    await asyncio.sleep(1)
    assert not waiting.done()
    stuck.cancel()

    await asyncio.wait_for(waiting, 1.0)
    assert bucket.in_flight == 0


async def test_a_snapshot_travels_as_json_and_refills_for_the_time_since() -> None:
    monotonic, wall = FakeClock(), FakeClock()
    wall.now = 1_767_225_600.0
    here = BucketSet(clock=monotonic, wall_clock=wall)
    items = here.bucket(GET_ORDER_ITEMS)
    items.set_rate(2.0)
    for _ in range(25):
        await items.acquire()  # 25 requests of the burst of 30 sent
    saved = json.loads(json.dumps(here.snapshot().model_dump(mode="json")))

    # Another process, another monotonic clock, 1.5 s of wall time later.
    other_monotonic = FakeClock()
    other_monotonic.now = 42.0
    wall.advance(1.5)
    there = BucketSet(clock=other_monotonic, wall_clock=wall)
    there.restore(saved)

    restored = there.bucket(GET_ORDER_ITEMS)
    assert saved == {
        "as_of": 1_767_225_600.0,
        "buckets": {"v0.getOrderItems": {"rate": 2.0, "burst": 30, "tokens": 5.0}},
    }
    assert (restored.rate, restored.burst) == (2.0, 30)
    assert restored.tokens == pytest.approx(5.0 + 1.5 * 2.0)
    assert there.bucket(GET_ORDER).tokens == GET_ORDER.plan.burst  # never used: untouched


async def test_restoring_never_gives_a_used_bucket_more_tokens() -> None:
    wall = FakeClock()
    registry = ConnectionRegistry(clock=FakeClock(), wall_clock=wall)
    state = registry.state("tenant-a", refresh_token=SecretStr("Atzr|1"))
    bucket = state.buckets.bucket(GET_ORDER)
    for _ in range(28):
        await bucket.acquire()
    snapshot = registry.snapshot("tenant-a")
    assert snapshot is not None
    # Another process saw more tokens left (its own view of the seller's quota).
    fuller = {
        "as_of": snapshot.as_of,
        "buckets": {GET_ORDER.name: {"rate": 0.5, "burst": 30, "tokens": 20.0}},
    }

    state.buckets.restore(fuller)

    assert bucket.tokens == pytest.approx(2.0)
    assert registry.snapshot("nobody") is None

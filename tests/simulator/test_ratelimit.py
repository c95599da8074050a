"""Amazon's token buckets: burst, refill at the rate, per seller and operation, rate_scale."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from keybuzz.simulator import SimulatorServer
from keybuzz.simulator.ratelimit import RateLimiter, TokenBucket
from keybuzz.simulator.spec import operation
from tests.simulator.conftest import FR, GET_ORDERS, LONG_AGO, SEARCH, SpApi, new_seller
from tests.simulator.schemas import assert_matches_model


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_gives_the_burst_then_refills_at_the_rate() -> None:
    bucket = TokenBucket(rate=0.5, burst=3, tokens=3.0, updated=0.0)

    burst = [bucket.take(0.0) for _ in range(4)]
    after_one_second = bucket.take(1.0)
    after_two_seconds = bucket.take(2.0)

    assert burst == [True, True, True, False]
    assert (after_one_second, after_two_seconds) == (False, True)


def test_limiter_uses_the_usage_plans_of_the_models() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock, rate_scale=1.0)

    results = [limiter.try_acquire("A1", "v2026.searchOrders") for _ in range(21)]
    clock.now += 180
    refilled = [limiter.try_acquire("A1", "v2026.searchOrders") for _ in range(2)]

    assert results == [True] * 20 + [False]
    assert refilled == [True, False]


def test_rate_scale_multiplies_rates_but_not_bursts() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock, rate_scale=100.0)

    plan = limiter.plan("v0.getOrders")
    burst = [limiter.try_acquire("A1", "v0.getOrders") for _ in range(21)]
    clock.now += 1

    assert (plan.rate, plan.burst) == pytest.approx((1.67, 20))
    assert burst == [True] * 20 + [False]
    assert limiter.try_acquire("A1", "v0.getOrders")
    assert not limiter.try_acquire("A1", "v0.getOrders")


def test_burst_of_21_search_calls_at_real_rates(
    make_server: Callable[..., SimulatorServer], connect: Callable[..., SpApi]
) -> None:
    server = make_server(rate_scale=1.0)
    api = connect(server, server.settings.seller_id)

    responses = [api.get(SEARCH, createdAfter=LONG_AGO, maxResultsPerPage=1) for _ in range(21)]

    assert [r.status_code for r in responses] == [200] * 20 + [429]
    assert all(r.headers["x-amzn-RateLimit-Limit"] == "0.0056" for r in responses[:20])
    throttled = responses[-1]
    assert "x-amzn-RateLimit-Limit" not in throttled.headers
    assert_matches_model("orders_2026-01-01.json", "searchOrders", 429, throttled.json())
    assert throttled.json() == {
        "errors": [
            {
                "code": "QuotaExceeded",
                "message": "You exceeded your quota for the requested resource.",
                "details": "",
            }
        ]
    }
    server.simulator.advance_clock(180)
    assert api.get(SEARCH, createdAfter=LONG_AGO, maxResultsPerPage=1).status_code == 200
    assert api.get(SEARCH, createdAfter=LONG_AGO, maxResultsPerPage=1).status_code == 429
    counts = server.simulator.counters()["v2026.searchOrders"]
    assert (counts["requests"], counts["throttled"]) == (23, 2)


def test_buckets_are_per_seller_and_per_operation(
    make_server: Callable[..., SimulatorServer], connect: Callable[..., SpApi]
) -> None:
    server = make_server(rate_scale=1.0)
    first = connect(server, server.settings.seller_id)
    second = connect(server, new_seller(server))
    for _ in range(20):
        first.get(SEARCH, createdAfter=LONG_AGO, maxResultsPerPage=1)

    assert first.get(SEARCH, createdAfter=LONG_AGO).status_code == 429
    assert second.get(SEARCH, createdAfter=LONG_AGO).status_code == 200
    assert first.get(GET_ORDERS, MarketplaceIds=FR, CreatedAfter=LONG_AGO).status_code == 200
    assert_matches_model(
        "ordersV0.json", "getOrders", 429, first.get(SEARCH, createdAfter=LONG_AGO).json()
    )


def test_rate_scale_can_change_at_run_time(
    make_server: Callable[..., SimulatorServer], connect: Callable[..., SpApi]
) -> None:
    server = make_server(rate_scale=1.0)
    api = connect(server, server.settings.seller_id)

    api.http.put("/_sim/rate-scale", json={"rate_scale": 10})
    response = api.get(SEARCH, createdAfter=LONG_AGO, maxResultsPerPage=1)

    assert response.headers["x-amzn-RateLimit-Limit"] == "0.056"
    assert operation("orders_2026-01-01.json", "searchOrders").usage_plan.rate == 0.0056

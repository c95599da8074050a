"""Amazon client fixtures: the SP-API simulator on loopback and clients pointed at it.

Only base URLs tell the client it is not talking to Amazon. ``sim`` is shared by a module's
tests; each test gets sellers of its own (``new_seller``) so buckets and data never collide.
Tests that inject faults, move the clock or change rates start their own with ``make_sim``.
Tests whose point is timing run the simulator in process on a virtual clock (``on_one_clock``).
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from keybuzz.amazon.client import SpApiClient
from keybuzz.amazon.config import SpApiConfig
from keybuzz.amazon.listing import ListingQuery
from keybuzz.amazon.regions import Region
from keybuzz.amazon.registry import ConnectionRegistry
from keybuzz.amazon.retry import RetryPolicy
from keybuzz.amazon.windows import LATEST_BEFORE, Window
from keybuzz.config import Settings
from keybuzz.runtime import spapi_config
from keybuzz.simulator import SimulatorServer, SimulatorSettings
from tests.fixtures.simulator import DE as DE
from tests.fixtures.simulator import FR as FR
from tests.fixtures.simulator import (
    InProcessSimulator,
    RunningSimulator,
    orders_older_than,
    simulators,
)
from tests.fixtures.simulator import new_seller as new_seller

SEARCH_PATH = "/orders/2026-01-01/orders"
FAST = 100_000.0
DEFAULTS: dict[str, Any] = {
    "orders": 120,
    "seed": 5,
    "rate_scale": FAST,
    "report_generation_seconds": 0,
}
QUICK_RETRY = RetryPolicy(attempts=8, base_delay=0.01, max_delay=0.05)
_numbers = itertools.count()


class FakeClock:
    """A monotonic clock tests move by hand."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def since(days: int = 400) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


def sim_settings(**overrides: Any) -> SimulatorSettings:
    return SimulatorSettings(**{**DEFAULTS, **overrides})


def all_orders(**options: Any) -> ListingQuery:
    """A listing of every order in France since ``since()`` (older than any test seller's)."""
    return ListingQuery(marketplace_ids=[FR], window=Window(created_after=since()), **options)


def amazon_config(server: RunningSimulator, **settings: Any) -> SpApiConfig:
    """The client's config for the simulator, from ``KEYBUZZ_*`` settings (by field name)."""
    values: dict[str, Any] = {
        "spapi_endpoint": server.base_url,
        "lwa_token_url": server.base_url + "/auth/o2/token",
        "seller_central_url": server.base_url,
        "spapi_timeout_seconds": 5.0,
        **settings,
    }
    return spapi_config(Settings(_env_file=None, **values))  # type: ignore[call-arg]


def truth(server: RunningSimulator, seller_id: str) -> list[dict[str, Any]]:
    """The seller's orders as the simulator holds them, minus those a client's search may not
    return yet (its upper bound is pulled back to now - ``LATEST_BEFORE``)."""
    return orders_older_than(server, seller_id, LATEST_BEFORE.total_seconds())


def counts(server: RunningSimulator, operation: str) -> dict[str, int]:
    """Answers per HTTP status the simulator counted for ``operation``. Its middleware counts
    an answer before sending it, so every answer the client has seen is counted."""
    counted = server.simulator.counters().get(operation, {"statuses": {}})
    return {status: int(n) for status, n in counted["statuses"].items()}


def client_for(
    server: RunningSimulator,
    http: httpx.AsyncClient,
    seller_id: str | None = None,
    *,
    config: SpApiConfig | None = None,
    **kwargs: Any,
) -> SpApiClient:
    """A client for a freshly authorised seller (a new one unless given), with its own
    registry and quick retries unless told otherwise."""
    seller = seller_id or new_seller(server)
    token = server.simulator.authorize(seller).value
    options: dict[str, Any] = {
        "region": Region.EU,
        "refresh_token": SecretStr(token),
        "connection_key": f"tenant-{seller}",
        "registry": ConnectionRegistry(),
        "retry": QUICK_RETRY,
        **kwargs,
    }
    return SpApiClient(http, config or amazon_config(server), **options)


def on_one_clock(
    amazon: InProcessSimulator, http: httpx.AsyncClient, seller_id: str, **kwargs: Any
) -> SpApiClient:
    """A client of the in-process simulator whose buckets, tokens and two-minute rule run on
    the running loop's clock, as the simulator's do (in a ``VirtualTimeLoop``: virtual time)."""
    clock = asyncio.get_running_loop().time
    options: dict[str, Any] = {
        "registry": ConnectionRegistry(clock=clock),
        "clock": clock,
        "wall_clock": amazon.wall_clock,
        **kwargs,
    }
    return client_for(amazon, http, seller_id, **options)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(sim_settings()) as running:
        yield running


@pytest.fixture
def make_sim() -> Iterator[Callable[..., SimulatorServer]]:
    yield from simulators(DEFAULTS)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


Connect = Callable[..., SpApiClient]


@pytest.fixture
def connect(http: httpx.AsyncClient) -> Connect:
    """``connect(server, seller_id=None, *, config=None, through=None, **client_kwargs)``: a
    client for a freshly authorised seller (a new one unless given), with its own registry and
    quick retries, over the shared HTTP client or ``through`` another."""

    def open_client(
        server: SimulatorServer,
        seller_id: str | None = None,
        *,
        through: httpx.AsyncClient | None = None,
        **kwargs: Any,
    ) -> SpApiClient:
        return client_for(server, through or http, seller_id, **kwargs)

    return open_client


MOCK_SPAPI = "https://sellingpartnerapi-eu.test"
MOCK_LWA = "https://lwa.test/auth/o2/token"
Handler = Callable[[httpx.Request], httpx.Response]


def lwa_answer(request: httpx.Request) -> httpx.Response | None:
    """LWA's answer when the request is for the token endpoint."""
    if str(request.url) != MOCK_LWA:
        return None
    body = {
        "access_token": "Atza|mock-access",
        "refresh_token": "Atzr|mock-refresh",
        "token_type": "bearer",
        "expires_in": 3600,
    }
    return httpx.Response(200, json=body)


@pytest.fixture
async def mock_connect() -> AsyncIterator[Callable[[Handler], SpApiClient]]:
    """``mock_connect(handler)``: a client whose HTTP goes to ``handler`` (LWA is answered)."""
    opened: list[httpx.AsyncClient] = []

    def open_client(handler: Handler) -> SpApiClient:
        def route(request: httpx.Request) -> httpx.Response:
            return lwa_answer(request) or handler(request)

        http = httpx.AsyncClient(transport=httpx.MockTransport(route))
        opened.append(http)
        config = spapi_config(
            Settings(  # type: ignore[call-arg]
                _env_file=None, spapi_endpoint=MOCK_SPAPI, lwa_token_url=MOCK_LWA
            )
        )
        return SpApiClient(
            http,
            config,
            region=Region.EU,
            refresh_token=SecretStr("Atzr|mock-refresh"),
            connection_key=f"mock-{next(_numbers)}",
            registry=ConnectionRegistry(),
            retry=QUICK_RETRY,
        )

    yield open_client
    for http in opened:
        await http.aclose()


class DenyPaths(httpx.AsyncBaseTransport):
    """What issue amzn/selling-partner-api-models#5319 describes and the simulator cannot play:
    these paths answer 403 for the seller (searchOrders, getOrder v2026) while the rest works."""

    def __init__(self, *paths: str) -> None:
        self.paths = paths
        self.inner = httpx.AsyncHTTPTransport()
        self.seen: Counter[str] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.seen[path] += 1
        if path in self.paths or any(p.endswith("/") and path.startswith(p) for p in self.paths):
            error = {
                "code": "Unauthorized",
                "message": "Access to requested resource is denied.",
                "details": "",
            }
            return httpx.Response(403, json={"errors": [error]})
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()

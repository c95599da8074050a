"""Simulator fixtures: running simulators on loopback and clients that talk to them like Amazon's.

``server`` is shared by the module's tests that only read; tests that move the clock, inject
faults or change rates start their own with ``make_server`` (a start takes a few milliseconds).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from keybuzz.simulator import SimulatorServer, SimulatorSettings
from tests.fixtures.simulator import DE as DE
from tests.fixtures.simulator import FR as FR
from tests.fixtures.simulator import new_seller as new_seller
from tests.fixtures.simulator import orders_older_than, simulators

SEARCH = "/orders/2026-01-01/orders"
GET_ORDERS = "/orders/v0/orders"
EVERY_INCLUDED_DATA = "BUYER,RECIPIENT,PROCEEDS,FULFILLMENT,PACKAGES,PROMOTION,CANCELLATION"
LONG_AGO = "2000-01-01T00:00:00Z"


@dataclass
class SpApi:
    """An SP-API caller for one seller: LWA refresh grant, then ``x-amz-access-token``."""

    server: SimulatorServer
    http: httpx.Client
    seller_id: str
    refresh_token: str
    access_token: str = ""

    def refresh(self) -> httpx.Response:
        settings = self.server.settings
        response = self.http.post(
            "/auth/o2/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": self.refresh_token,
                "client_id": settings.client_id,
                "client_secret": settings.client_secret.get_secret_value(),
            },
        )
        if response.status_code == 200:
            self.access_token = response.json()["access_token"]
        return response

    def get(self, path: str, token: str | None = None, **params: Any) -> httpx.Response:
        headers = {"x-amz-access-token": token or self.access_token}
        return self.http.get(path, params=params, headers=headers)

    def post(self, path: str, body: Any, token: str | None = None) -> httpx.Response:
        headers = {"x-amz-access-token": token or self.access_token}
        return self.http.post(path, json=body, headers=headers)


DEFAULTS: dict[str, Any] = {"orders": 150, "seed": 7, "rate_scale": 100_000.0}


def settings(**overrides: Any) -> SimulatorSettings:
    return SimulatorSettings(**{**DEFAULTS, **overrides})


def caller(server: SimulatorServer, http: httpx.Client, seller_id: str) -> SpApi:
    api = SpApi(server, http, seller_id, server.simulator.authorize(seller_id).value)
    assert api.refresh().status_code == 200
    return api


@pytest.fixture(scope="module")
def server() -> Iterator[SimulatorServer]:
    with SimulatorServer(settings(report_generation_seconds=0)) as running:
        yield running


@pytest.fixture
def make_server() -> Iterator[Callable[..., SimulatorServer]]:
    yield from simulators(DEFAULTS)


@pytest.fixture
def http(server: SimulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        yield client


@pytest.fixture
def api(server: SimulatorServer, http: httpx.Client) -> SpApi:
    return caller(server, http, server.settings.seller_id)


def searchable_truth(server: SimulatorServer, seller_id: str) -> list[dict[str, Any]]:
    """Ground truth minus the orders of the last two minutes, which no search may return yet."""
    return orders_older_than(server, seller_id, 120)


@pytest.fixture
def connect() -> Iterator[Callable[[SimulatorServer, str], SpApi]]:
    """``connect(server, seller_id)``: an SP-API caller on any server, closed afterwards."""
    clients: list[httpx.Client] = []

    def open_caller(running: SimulatorServer, seller_id: str) -> SpApi:
        client = httpx.Client(base_url=running.base_url, timeout=10)
        clients.append(client)
        return caller(running, client, seller_id)

    yield open_caller
    for client in clients:
        client.close()

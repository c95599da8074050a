"""An independent client, python-amazon-sp-api, works against the simulator unchanged.

Only its public configuration is used: the LWA token client class it accepts as a constructor
argument, and the endpoint attribute every client carries.
"""

from __future__ import annotations

from typing import Any

from sp_api.api import Orders
from sp_api.auth import AccessTokenClient
from sp_api.base import Marketplaces
from sp_api.util import load_all_pages

from keybuzz.simulator import SimulatorServer
from tests.simulator.conftest import LONG_AGO, searchable_truth


def sp_api_client(server: SimulatorServer, version: str | None = None) -> Any:
    settings = server.settings
    token_client = type(
        "SimulatorLwa",
        (AccessTokenClient,),
        {"scheme": "http://", "host": server.base_url.removeprefix("http://")},
    )
    client = Orders(
        marketplace=Marketplaces.FR,
        refresh_token=server.simulator.authorize(settings.seller_id).value,
        credentials={
            "lwa_app_id": settings.client_id,
            "lwa_client_secret": settings.client_secret.get_secret_value(),
        },
        auth_token_client_class=token_client,
        version=version,
    )
    client.endpoint = server.base_url
    return client


def test_sp_api_lists_orders_and_items_with_orders_v0(server: SimulatorServer) -> None:
    client = sp_api_client(server)
    expected = searchable_truth(server, server.settings.seller_id)

    @load_all_pages(throttle_by_seconds=0)
    def pages(**kwargs: Any) -> Any:
        return client.get_orders(**kwargs)

    try:
        orders = [o for page in pages(CreatedAfter=LONG_AGO) for o in page.payload["Orders"]]
        first = orders[0]["AmazonOrderId"]
        items = client.get_order_items(first).payload["OrderItems"]
    finally:
        client.close()

    assert {o["AmazonOrderId"] for o in orders} == {o["orderId"] for o in expected}
    truth = next(o for o in expected if o["orderId"] == first)
    assert [i["OrderItemId"] for i in items] == [i["orderItemId"] for i in truth["orderItems"]]


def test_sp_api_searches_orders_with_orders_v2026(server: SimulatorServer) -> None:
    client = sp_api_client(server, version="2026-01-01")
    try:
        response = client.search_orders(createdAfter=LONG_AGO, maxResultsPerPage=10)
    finally:
        client.close()

    assert len(response.payload["orders"]) == 10
    assert response.next_token

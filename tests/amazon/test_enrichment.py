"""Enrichment pages under the caller's control: exactly one list call per page, on v2026
searchOrders or v0 getOrders (bulk RDT, no items), continued from a position; an API Amazon
refuses or no longer serves is a typed error, and v0 has an end date."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from keybuzz.amazon.client import SpApiClient
from keybuzz.amazon.errors import AmazonApiUnavailable
from keybuzz.amazon.listing import Api, OrderRecordPage
from keybuzz.amazon.orders_v0 import V0_REMOVAL, v0_available
from keybuzz.amazon.windows import Window
from keybuzz.simulator import SimulatorServer
from tests.amazon.conftest import FR, SEARCH_PATH, Connect, DenyPaths, counts, new_seller, truth

V0_PATH = "/orders/v0/orders"


def created(order: dict[str, object]) -> datetime:
    return datetime.fromisoformat(str(order["createdTime"]))


async def every_page(client: SpApiClient, api: Api, window: Window) -> list[OrderRecordPage]:
    """The window's pages, one ``enrichment_page`` call each, the position saved as JSON in
    between as a job step would."""
    pages = [await client.enrichment_page(api, window, marketplace_ids=[FR])]
    while pages[-1].position is not None:
        saved = json.loads(json.dumps(pages[-1].position.model_dump(mode="json")))
        pages.append(
            await client.enrichment_page(api, window, marketplace_ids=[FR], position=saved)
        )
    return pages


@pytest.mark.parametrize("api", ["v2026", "v0"])
async def test_one_list_call_per_page_over_the_window(
    make_sim: Callable[..., SimulatorServer], connect: Connect, api: Api
) -> None:
    server = make_sim()
    seller = new_seller(server, orders=500, days=30)
    everything = truth(server, seller)
    # The newest orders first, as the engine enriches: a window over the last 12 days.
    start = created(everything[-1]) - timedelta(days=12)
    expected = [o for o in everything if created(o) >= start]
    window = Window(created_after=start, created_before=datetime.now(UTC))
    client = connect(server, seller)

    pages = await every_page(client, api, window)

    records = [r for page in pages for r in page.records]
    assert [r.external_order_id for r in records] == [o["orderId"] for o in expected]
    assert len(pages) == (len(expected) + 99) // 100 > 1
    assert all(page.api == api and not page.rejected for page in pages)
    assert all(r.enriched for r in records)
    assert any(r.customer_name for r in records)  # buyer details came with the orders
    assert any(r.latest_ship_date for r in records)
    if api == "v2026":
        assert counts(server, "v2026.searchOrders") == {"200": len(pages)}
        assert all(r.items is not None for r in records)
    else:
        assert counts(server, "v0.getOrders") == {"200": len(pages)}
        assert counts(server, "tokens.createRestrictedDataToken") == {"200": 1}
        assert counts(server, "v0.getOrderItems") == {}
        assert all(r.items is None for r in records)  # the report's items stay


async def test_a_position_of_one_api_does_not_continue_the_other(
    sim: SimulatorServer, connect: Connect
) -> None:
    client = connect(sim, new_seller(sim, orders=150))
    window = Window(created_after=datetime.now(UTC) - timedelta(days=40))
    page = await client.enrichment_page("v2026", window, marketplace_ids=[FR])
    assert page.position is not None

    with pytest.raises(ValueError, match="v2026 position cannot continue a v0 listing"):
        await client.enrichment_page("v0", window, marketplace_ids=[FR], position=page.position)


@pytest.mark.parametrize(("api", "path"), [("v0", V0_PATH), ("v2026", SEARCH_PATH)])
async def test_an_api_refused_to_the_seller_is_unavailable(
    sim: SimulatorServer, connect: Connect, api: Api, path: str
) -> None:
    async with httpx.AsyncClient(transport=DenyPaths(path)) as http:
        client = connect(sim, new_seller(sim), through=http)

        with pytest.raises(AmazonApiUnavailable) as caught:
            await client.enrichment_page(
                api,
                Window(created_after=datetime.now(UTC) - timedelta(days=40)),
                marketplace_ids=[FR],
            )

    assert caught.value.api == api
    assert caught.value.code == "amazon_api_unavailable"


async def test_v0_gone_at_amazon_is_unavailable(
    mock_connect: Callable[[Callable[[httpx.Request], httpx.Response]], SpApiClient],
) -> None:
    def removed(request: httpx.Request) -> httpx.Response:
        if request.url.path == V0_PATH:
            error = {"code": "NotFound", "message": "Resource not found."}
            return httpx.Response(404, json={"errors": [error]})
        return httpx.Response(200, json={"restrictedDataToken": "Atz.sprdt|x", "expiresIn": 3600})

    client = mock_connect(removed)

    with pytest.raises(AmazonApiUnavailable, match="HTTP 404 NotFound") as caught:
        await client.enrichment_page(
            "v0", Window(created_after=datetime.now(UTC) - timedelta(days=4)), marketplace_ids=[FR]
        )

    assert caught.value.api == "v0"


def test_v0_is_not_asked_from_the_day_amazon_removes_it() -> None:
    assert V0_REMOVAL == datetime(2027, 3, 27, tzinfo=UTC)
    assert v0_available(datetime(2027, 3, 26, 23, 59, 59, tzinfo=UTC))
    assert not v0_available(datetime(2027, 3, 27, tzinfo=UTC))
    assert not v0_available(datetime(2028, 1, 1, tzinfo=UTC))

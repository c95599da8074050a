"""Every order with its items as ``OrderRecord`` pages: v2026 first, v0 when searchOrders is
denied, resumable from a saved position."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from keybuzz.amazon.client import SpApiClient
from keybuzz.amazon.errors import AmazonAccessDenied
from keybuzz.amazon.listing import ListingPosition
from keybuzz.orders.records import OrderRecord, OrderStatus
from keybuzz.simulator import SimulatorServer
from tests.amazon.conftest import (
    FR,
    SEARCH_PATH,
    Connect,
    DenyPaths,
    all_orders,
    new_seller,
    truth,
)

# The simulator's v0 status of each ground-truth order, mapped by the documented table.
EXPECTED_STATUS = {
    "PendingAvailability": OrderStatus.PENDING,
    "Pending": OrderStatus.PENDING,
    "Unshipped": OrderStatus.CONFIRMED,
    "PartiallyShipped": OrderStatus.CONFIRMED,
    "Shipped": OrderStatus.SHIPPED,
    "InvoiceUnconfirmed": OrderStatus.SHIPPED,
    "Canceled": OrderStatus.CANCELLED,
}


async def records_of(client: SpApiClient, **options: Any) -> tuple[list[OrderRecord], set[str]]:
    records: list[OrderRecord] = []
    apis: set[str] = set()
    async for page in client.list_order_records(all_orders(), **options):
        records += page.records
        apis.add(page.api)
    return records, apis


def assert_match_truth(records: list[Any], expected: list[dict[str, Any]]) -> None:
    assert [r.external_order_id for r in records] == [o["orderId"] for o in expected]
    for record, wanted in zip(records, expected, strict=True):
        assert record.order_status in (
            EXPECTED_STATUS[wanted["orderStatus"]],
            OrderStatus.DELIVERED,
        )
        assert [i.external_item_id for i in record.items] == [
            i["orderItemId"] for i in wanted["orderItems"]
        ]
        assert [i.quantity for i in record.items] == [
            i["quantityOrdered"] for i in wanted["orderItems"]
        ]
        priced = [i for i in wanted["orderItems"] if "price" in i["product"]]
        assert [str(i.unit_price) for i in record.items if i.unit_price is not None] == [
            i["product"]["price"]["unitPrice"]["amount"] for i in priced
        ]


async def test_v2026_lists_every_order_with_items(sim: SimulatorServer, connect: Connect) -> None:
    seller = new_seller(sim, orders=70)
    records, apis = await records_of(connect(sim, seller))

    assert apis == {"v2026"}
    assert_match_truth(records, truth(sim, seller))
    assert any(r.order_status is OrderStatus.DELIVERED for r in records)


async def test_v0_lists_the_same_orders(sim: SimulatorServer, connect: Connect) -> None:
    seller = new_seller(sim, orders=70)
    v2026, _ = await records_of(connect(sim, seller))
    v0, apis = await records_of(connect(sim, seller), api="v0")

    assert apis == {"v0"}
    assert_match_truth(v0, truth(sim, seller))
    for old, new in zip(v0, v2026, strict=True):
        assert (old.total_amount, old.currency, old.order_ref) == (
            new.total_amount,
            new.currency,
            new.order_ref,
        )
        # v2026 shows fewer buyers than v0 with an RDT (not FBA e-mails, not outside shipping).
        if new.customer_name is not None:
            assert old.customer_name == new.customer_name
        if new.customer_email is not None:
            assert old.customer_email == new.customer_email
        assert old.latest_ship_date == new.latest_ship_date


async def test_falls_back_to_v0_when_search_orders_is_denied(
    sim: SimulatorServer, connect: Connect
) -> None:
    seller = new_seller(sim, orders=45)
    transport = DenyPaths(SEARCH_PATH)
    async with httpx.AsyncClient(transport=transport) as http:
        client = connect(sim, seller, through=http)

        records, apis = await records_of(client)
        again, apis_again = await records_of(client)
        with pytest.raises(AmazonAccessDenied):
            await records_of(client, api="v2026")

    assert apis == apis_again == {"v0"}
    assert_match_truth(records, truth(sim, seller))
    assert [r.external_order_id for r in again] == [r.external_order_id for r in records]
    # First listing: denied once (its token was fresh). Second: v0 straight away, remembered.
    # Forced v2026: denied with the cached token, then once more with a fresh one.
    assert transport.seen[SEARCH_PATH] == 1 + 0 + 2


async def test_a_v0_listing_resumes_from_a_saved_position(
    sim: SimulatorServer, connect: Connect
) -> None:
    seller = new_seller(sim, orders=60)
    seen: list[str] = []
    saved = ""
    pages = connect(sim, seller).list_order_records(all_orders(max_results_per_page=25), api="v0")
    async for page in pages:
        seen += [r.external_order_id for r in page.records]
        assert page.position is not None
        saved = json.dumps(page.position.model_dump(mode="json"))
        break
    await pages.aclose()  # type: ignore[attr-defined]

    rest, apis = await records_of(connect(sim, seller), position=json.loads(saved))

    assert apis == {"v0"}
    assert seen + [r.external_order_id for r in rest] == [o["orderId"] for o in truth(sim, seller)]


@pytest.mark.parametrize(
    "saved",
    [
        {
            "api": "v2026",
            "v2026": {
                "query": {
                    "window": {
                        "created_after": "2026-01-01T00:00:00Z",
                        "created_before": "2026-03-01T00:00:00Z",
                        "last_updated_after": None,
                        "last_updated_before": None,
                    },
                    "marketplace_ids": [FR],
                    "fulfillment_statuses": [],
                    "fulfilled_by": [],
                    "included_data": ["BUYER", "RECIPIENT", "PROCEEDS", "FULFILLMENT", "PACKAGES"],
                    "max_results_per_page": 100,
                },
                "next_token": "2YgYW55IGNhcm5hbCBwbGVhc3VyZS4=",
            },
            "v0": None,
        },
        {
            "api": "v0",
            "v2026": None,
            "v0": {
                "query": {
                    "marketplace_ids": [FR],
                    "window": {
                        "created_after": None,
                        "created_before": None,
                        "last_updated_after": "2026-01-01T00:00:00Z",
                        "last_updated_before": None,
                    },
                    "order_statuses": ["Shipped"],
                    "fulfillment_channels": [],
                    "amazon_order_ids": [],
                    "max_results_per_page": 25,
                },
                "next_token": "2YgYW55IGNhcm5hbCBwbGVhc3VyZS4=",
            },
        },
    ],
)
def test_a_saved_position_keeps_its_json(saved: dict[str, Any]) -> None:
    """Positions live on in backfill checkpoints: the stored JSON must read back as it was."""
    assert ListingPosition.model_validate(saved).model_dump(mode="json") == saved

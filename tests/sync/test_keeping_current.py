"""After the backfill: an incremental sync brings exactly what Amazon changed, with its events;
a refresh brings a change made a second before; a cancel stops a backfill and keeps what it
stored; a purge starts from nothing; an order Amazon sends broken is set aside, the rest goes on."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from keybuzz.db import transaction
from keybuzz.orders.models import EventSource, Order, OrderEvent
from keybuzz.orders.upsert import upsert_orders
from keybuzz.simulator import SimulatorServer
from keybuzz.simulator.faults import FaultKind, ScriptedFault
from keybuzz.simulator.records import Status
from keybuzz.sync import service
from keybuzz.worker import worker_in_background
from tests.factories import TenantCredentials, make_tenant, order_record
from tests.fixtures.amazon import BACKFILL, Deployed, connection_of
from tests.fixtures.sync import (
    assert_matches_amazon,
    backfill,
    settled_amazon,
    settled_seller,
    stored_orders,
)


@pytest.fixture
def amazon() -> Iterator[SimulatorServer]:
    """Amazon with no seller but those a test creates."""
    yield from settled_amazon()


AMAZON_DELAY = 130
"""Seconds Amazon's clock is moved on before a sync: Amazon shows changes of the last two
minutes to no search, so a sync sees those of the test once Amazon's clock is past them."""


def _other_status(status: Status) -> Status:
    return Status.SHIPPED if status is Status.CANCELED else Status.CANCELED


async def _events(deployed: Deployed, tenant: TenantCredentials, order_id: str) -> list[Any]:
    response = await deployed.client.get(
        f"/api/v1/orders/{order_id}/events", headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    items: list[Any] = response.json()["items"]
    return items


async def _sync_events_of_others(
    deployed: Deployed, tenant: TenantCredentials, changed: set[str]
) -> int:
    async with transaction(deployed.runtime.privileged_sessionmaker) as session:
        count = await session.scalar(
            select(func.count())
            .select_from(OrderEvent)
            .join(Order, Order.id == OrderEvent.order_id)
            .where(
                OrderEvent.tenant_id == tenant.id,
                Order.tenant_id == tenant.id,
                OrderEvent.source == EventSource.SYNC,
                Order.external_order_id.not_in(changed),
            )
        )
    return int(count or 0)


async def _sync(deployed: Deployed, tenant: TenantCredentials) -> dict[str, Any]:
    """The tenant's incremental sync queued now and run by a worker to its end; the connection
    as it stands after."""
    started = dt.datetime.now(dt.UTC)
    async with transaction(deployed.runtime.privileged_sessionmaker) as session:
        await service.defer_sync(session, deployed.runtime.jobs, tenant.id)

    async def synced() -> bool:
        connection = await connection_of(deployed.client, tenant)
        last = connection["lastSyncAt"]
        return last is not None and dt.datetime.fromisoformat(last) > started

    await deployed.run_jobs(until=synced)
    return await connection_of(deployed.client, tenant)


async def test_an_incremental_sync_brings_exactly_what_amazon_changed_with_its_events(
    deployed: Deployed, amazon: SimulatorServer
) -> None:
    simulator = amazon.simulator
    seller = settled_seller(amazon, 1000)
    tenant = await deployed.tenant()
    await backfill(deployed, tenant, days=90)
    before = {o["externalOrderId"]: o for o in await stored_orders(deployed.client, tenant)}

    picked = random.Random(9).sample(sorted(before), 200)
    status_changed, renamed = picked[:100], picked[100:]
    now = simulator.now()
    for order_id in status_changed:
        order = simulator.sellers[seller].book.get(order_id, now)
        assert order is not None
        simulator.change_order(seller, order_id, status=_other_status(order.status_at(now)))
    for number, order_id in enumerate(renamed):
        simulator.change_order(seller, order_id, buyer_name=f"Renamed Buyer {number}")
    added = [order.order_id for order in simulator.add_orders(seller, 20)]
    simulator.set_clock_offset(2)  # every new order exists; freeze where each stands
    for order_id in added:
        order = simulator.sellers[seller].book.get(order_id, simulator.now())
        assert order is not None
        simulator.change_order(seller, order_id, status=order.status_at(simulator.now()))
    changed_at = simulator.now()
    simulator.set_clock_offset(AMAZON_DELAY)

    connection = await _sync(deployed, tenant)

    after = await stored_orders(deployed.client, tenant)
    truth = simulator.ground_truth(seller)["orders"]
    assert_matches_amazon(amazon, seller, after, truth, earlier=before)
    touched = {
        o["externalOrderId"]
        for o in after
        if o["updatedAt"] != before.get(o["externalOrderId"], {}).get("updatedAt")
    }
    assert touched == set(picked) | set(added)
    by_ref = {o["externalOrderId"]: o for o in after}
    for order_id in status_changed:
        events = await _events(deployed, tenant, by_ref[order_id]["id"])
        assert {
            "field": "orderStatus",
            "source": "sync",
            "to": by_ref[order_id]["orderStatus"],
            "from": before[order_id]["orderStatus"],
        } in [{k: e[k] for k in ("field", "source", "to", "from")} for e in events], order_id
    for order_id in picked:  # what the sync saw of them is now the order's, from "sync"
        events = await _events(deployed, tenant, by_ref[order_id]["id"])
        for event in [e for e in events if e["source"] != "backfill"]:
            assert event["source"] == "sync"
            assert event["to"] == by_ref[order_id][event["field"]], (order_id, event)
    assert await _sync_events_of_others(deployed, tenant, set(picked) | set(added)) == 0
    for order_id in added:
        events = await _events(deployed, tenant, by_ref[order_id]["id"])
        first_status = [e for e in events if e["field"] == "orderStatus"]
        assert [(e["from"], e["to"], e["source"]) for e in first_status] == [
            (None, by_ref[order_id]["orderStatus"], "sync")
        ]
    assert dt.datetime.fromisoformat(connection["syncedThrough"]) > dt.datetime.fromtimestamp(
        changed_at, dt.UTC
    )
    assert connection["nextSyncAt"] is not None


async def test_a_refresh_brings_a_change_made_a_second_before(
    deployed: Deployed, amazon: SimulatorServer
) -> None:
    seller = settled_seller(amazon, 50)
    tenant = await deployed.tenant()
    await backfill(deployed, tenant, days=90)
    [order] = [o for o in await stored_orders(deployed.client, tenant)][:1]
    simulator = amazon.simulator
    current = simulator.sellers[seller].book.get(order["externalOrderId"], simulator.now())
    assert current is not None
    simulator.change_order(
        seller, order["externalOrderId"], status=_other_status(current.status_at(simulator.now()))
    )
    await asyncio.sleep(1)

    response = await deployed.client.post(
        f"/api/v1/orders/{order['id']}/refresh", headers=tenant.headers
    )

    assert response.status_code == 200, response.text
    refreshed = response.json()
    assert refreshed["orderStatus"] != order["orderStatus"]
    events = await _events(deployed, tenant, order["id"])
    refreshes = [e for e in events if e["source"] == "refresh" and e["field"] == "orderStatus"]
    assert [(e["from"], e["to"]) for e in refreshes] == [
        (order["orderStatus"], refreshed["orderStatus"])
    ]


async def _orders_in_database(deployed: Deployed, tenant: TenantCredentials) -> int:
    async with transaction(deployed.runtime.privileged_sessionmaker) as session:
        count = await session.scalar(
            select(func.count()).select_from(Order).where(Order.tenant_id == tenant.id)
        )
    return int(count or 0)


async def test_a_cancelled_backfill_stops_at_a_page_boundary_and_keeps_what_it_stored(
    deployed: Deployed, amazon: SimulatorServer
) -> None:
    settled_seller(amazon, 5000)
    tenant = await deployed.tenant()
    queued = await deployed.client.post(BACKFILL, json={"days": 90}, headers=tenant.headers)
    job_id = queued.json()["id"]

    async with worker_in_background(deployed.runtime):
        while (await deployed.backfill_job(tenant, job_id))["ordersStored"] == 0:
            await asyncio.sleep(0.05)
        cancelled = await deployed.client.post(
            f"{BACKFILL}/{job_id}/cancel", headers=tenant.headers
        )
        while (await deployed.backfill_job(tenant, job_id))["status"] == "RUNNING":
            await asyncio.sleep(0.05)
        await asyncio.sleep(1)  # a worker that went on would store more meanwhile
    job = await deployed.backfill_job(tenant, job_id)

    assert cancelled.status_code == 200, cancelled.text
    assert job["status"] == "CANCELLED"
    assert job["ordersEnriched"] < 5000
    assert 0 < job["ordersStored"] == await _orders_in_database(deployed, tenant)
    again = await deployed.client.post(BACKFILL, json={"days": 90}, headers=tenant.headers)
    assert again.status_code == 202  # a new backfill may start at once


async def test_a_purge_starts_the_tenants_amazon_orders_from_nothing(
    deployed: Deployed, amazon: SimulatorServer
) -> None:
    seller = settled_seller(amazon, 300)
    tenant = await deployed.tenant()
    async with transaction(deployed.runtime.privileged_sessionmaker) as session:
        neighbour = await make_tenant(session, "neighbour-001")
        await upsert_orders(session, tenant.id, [order_record(number=990001)])
        await upsert_orders(session, neighbour.id, [order_record(number=990002)])

    job = await backfill(deployed, tenant, days=90, purge=True)

    stored = await stored_orders(deployed.client, tenant)
    assert job["status"] == "SUCCEEDED"
    assert_matches_amazon(amazon, seller, stored, amazon.simulator.ground_truth(seller)["orders"])
    assert await _orders_in_database(deployed, neighbour) == 1


async def test_an_order_amazon_sends_broken_is_set_aside_and_the_backfill_goes_on(
    deployed: Deployed, amazon: SimulatorServer
) -> None:
    seller = settled_seller(amazon, 300)
    tenant = await deployed.tenant()
    amazon.simulator.script_faults(
        [ScriptedFault(FaultKind.MALFORMED_ORDER, "reports.createReport")]
    )

    job = await backfill(deployed, tenant, days=90)

    quarantine = await deployed.client.get(
        "/api/v1/orders/quarantine", params={"backfillJobId": job["id"]}, headers=tenant.headers
    )
    [set_aside] = quarantine.json()["items"]
    assert (job["status"], job["quarantined"]) == ("SUCCEEDED", 1)
    assert set_aside["source"] == "report"
    assert set_aside["reason"]
    # The order APIs sent it whole: it is stored as Amazon has it all the same.
    stored = await stored_orders(deployed.client, tenant)
    assert_matches_amazon(amazon, seller, stored, amazon.simulator.ground_truth(seller)["orders"])


async def test_a_refresh_beyond_the_sellers_quota_says_when_to_try_again(
    deployed: Deployed, amazon: SimulatorServer
) -> None:
    settled_seller(amazon, 20)
    tenant = await deployed.tenant()
    await backfill(deployed, tenant, days=90)
    [order] = (await stored_orders(deployed.client, tenant))[:1]
    amazon.simulator.set_rate_scale(1)  # getOrder at Amazon's own pace: 0.5 a second, 30 at once
    url = f"/api/v1/orders/{order['id']}/refresh"

    answers = [await deployed.client.post(url, headers=tenant.headers) for _ in range(40)]

    statuses = [answer.status_code for answer in answers]
    assert set(statuses) == {200, 429}
    refused = answers[statuses.index(429)]
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "amazon_quota_exhausted"
    assert int(refused.headers["retry-after"]) >= 1
    assert amazon.simulator.counters()["v2026.getOrder"]["statuses"].get("429", 0) == 0

"""The timeline: every change of an order's statuses, tracking code and sav status, with who
made it, appended in the transaction that made it and read oldest first."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import uuid
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.db import create_engine, create_sessionmaker, libpq_url, transaction
from keybuzz.orders.models import EventSource, Order, OrderEvent
from keybuzz.orders.records import DeliveryStatus, OrderRecord, OrderStatus
from keybuzz.orders.service import upsert_orders
from tests.factories import TenantCredentials, make_tenant, order_record

PROBLEM = "application/problem+json"
Event = tuple[str, str | None, str | None, str]


async def _events(session: AsyncSession, tenant: TenantCredentials) -> list[Event]:
    result = await session.scalars(
        select(OrderEvent)
        .where(OrderEvent.tenant_id == tenant.id)
        .order_by(OrderEvent.occurred_at, OrderEvent.field)
    )
    return [(e.field.value, e.from_value, e.to_value, e.source.value) for e in result]


async def _order_id(
    session: AsyncSession, tenant: TenantCredentials, record: OrderRecord
) -> uuid.UUID:
    order_id = await session.scalar(
        select(Order.id).where(
            Order.tenant_id == tenant.id, Order.external_order_id == record.external_order_id
        )
    )
    assert order_id is not None
    return order_id


def _newer(record: OrderRecord, **changes: Any) -> OrderRecord:
    later = record.external_updated_at + dt.timedelta(hours=1)
    return dataclasses.replace(record, external_updated_at=later, **changes)


async def test_an_order_imported_by_a_backfill_starts_without_events(
    session: AsyncSession, tenant: TenantCredentials
) -> None:
    result = await upsert_orders(session, tenant.id, [order_record(tracking_code="1Z1")])

    assert result.events_written == 0
    assert await _events(session, tenant) == []


@pytest.mark.parametrize("source", [EventSource.SYNC, EventSource.REFRESH])
async def test_an_order_first_seen_by_a_sync_or_refresh_starts_its_timeline_from_null(
    session: AsyncSession, tenant: TenantCredentials, source: EventSource
) -> None:
    record = order_record(
        order_status=OrderStatus.SHIPPED,
        delivery_status=DeliveryStatus.IN_TRANSIT,
        tracking_code="1Z999",
    )
    without_tracking = order_record(tracking_code=None)

    result = await upsert_orders(session, tenant.id, [record, without_tracking], source=source)

    assert result.events_written == 5
    assert sorted(await _events(session, tenant)) == sorted(
        [
            ("orderStatus", None, "SHIPPED", source.value),
            ("deliveryStatus", None, "IN_TRANSIT", source.value),
            ("trackingCode", None, "1Z999", source.value),
            ("orderStatus", None, "CONFIRMED", source.value),
            ("deliveryStatus", None, "PREPARING", source.value),
        ]
    )


async def test_each_change_is_an_event_with_its_source_and_a_replay_adds_none(
    session: AsyncSession, tenant: TenantCredentials
) -> None:
    record = order_record(order_status=OrderStatus.CONFIRMED)
    shipped = _newer(
        record,
        order_status=OrderStatus.SHIPPED,
        delivery_status=DeliveryStatus.IN_TRANSIT,
        tracking_code="1Z999",
        customer_name="Zoë Lefèvre",
    )
    await upsert_orders(session, tenant.id, [record])

    changed = await upsert_orders(session, tenant.id, [shipped], source=EventSource.SYNC)
    replayed = await upsert_orders(session, tenant.id, [shipped], source=EventSource.SYNC)
    renamed = await upsert_orders(session, tenant.id, [_newer(shipped, customer_name="Zoë L.")])

    assert (changed.events_written, replayed.events_written, renamed.events_written) == (3, 0, 0)
    assert renamed.orders_written == 1
    assert sorted(await _events(session, tenant)) == sorted(
        [
            ("orderStatus", "CONFIRMED", "SHIPPED", "sync"),
            ("deliveryStatus", "PREPARING", "IN_TRANSIT", "sync"),
            ("trackingCode", None, "1Z999", "sync"),
        ]
    )


async def test_a_source_silent_on_a_field_or_older_data_makes_no_event(
    session: AsyncSession, tenant: TenantCredentials
) -> None:
    record = order_record(tracking_code="1Z999", delivery_status=DeliveryStatus.IN_TRANSIT)
    silent = _newer(record, tracking_code=None, delivery_status=None)
    older = dataclasses.replace(
        record,
        order_status=OrderStatus.CANCELLED,
        external_updated_at=record.external_updated_at - dt.timedelta(hours=1),
    )
    await upsert_orders(session, tenant.id, [record])

    written = await upsert_orders(session, tenant.id, [silent], source=EventSource.SYNC)
    refused = await upsert_orders(session, tenant.id, [older], source=EventSource.SYNC)

    assert (written.orders_written, refused.orders_written) == (1, 0)
    assert await _events(session, tenant) == []


async def test_marketplace_data_cannot_claim_to_be_an_agent(
    session: AsyncSession, tenant: TenantCredentials
) -> None:
    with pytest.raises(ValueError, match="agent"):
        await upsert_orders(session, tenant.id, [order_record()], source=EventSource.AGENT)


async def test_the_timeline_lists_every_change_oldest_first_with_the_agents(
    client: httpx.AsyncClient, session: AsyncSession, tenant: TenantCredentials
) -> None:
    record = order_record(order_status=OrderStatus.CONFIRMED)
    await upsert_orders(session, tenant.id, [record], source=EventSource.SYNC)
    order_id = await _order_id(session, tenant, record)
    url = f"/api/v1/orders/{order_id}"
    await client.patch(url, json={"savStatus": "OPEN"}, headers=tenant.headers)
    await client.patch(url, json={"savStatus": "OPEN"}, headers=tenant.headers)  # no change
    shipped = _newer(record, order_status=OrderStatus.SHIPPED)
    await upsert_orders(session, tenant.id, [shipped], source=EventSource.SYNC)
    await client.patch(url, json={"savStatus": "RESOLVED"}, headers=tenant.headers)

    response = await client.get(f"{url}/events", headers=tenant.headers)

    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert all(set(item) == {"occurredAt", "field", "from", "to", "source"} for item in items)
    assert all(item["occurredAt"].endswith("Z") for item in items)
    assert [item["occurredAt"] for item in items] == sorted(item["occurredAt"] for item in items)
    first_two = sorted((item["field"], item["from"], item["to"]) for item in items[:2])
    assert first_two == [("deliveryStatus", None, "PREPARING"), ("orderStatus", None, "CONFIRMED")]
    assert [(item["field"], item["from"], item["to"], item["source"]) for item in items[2:]] == [
        ("savStatus", "NONE", "OPEN", "agent"),
        ("orderStatus", "CONFIRMED", "SHIPPED", "sync"),
        ("savStatus", "OPEN", "RESOLVED", "agent"),
    ]


async def test_an_order_without_changes_has_an_empty_timeline(
    client: httpx.AsyncClient, session: AsyncSession, tenant: TenantCredentials
) -> None:
    record = order_record()
    await upsert_orders(session, tenant.id, [record])
    order_id = await _order_id(session, tenant, record)

    response = await client.get(f"/api/v1/orders/{order_id}/events", headers=tenant.headers)

    assert response.json() == {"items": []}


async def test_another_tenants_timeline_is_a_404(
    client: httpx.AsyncClient,
    session: AsyncSession,
    tenant: TenantCredentials,
    other_tenant: TenantCredentials,
) -> None:
    record = order_record()
    await upsert_orders(session, other_tenant.id, [record], source=EventSource.SYNC)
    theirs = await _order_id(session, other_tenant, record)

    for order_id in (theirs, uuid.uuid4()):
        response = await client.get(f"/api/v1/orders/{order_id}/events", headers=tenant.headers)
        assert response.status_code == 404
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["code"] == "order_not_found"


async def test_events_go_with_their_order(
    client: httpx.AsyncClient, session: AsyncSession, tenant: TenantCredentials
) -> None:
    await upsert_orders(session, tenant.id, [order_record()], source=EventSource.SYNC)

    purged = await client.delete(
        "/api/v1/orders", params={"confirm": "true"}, headers=tenant.headers
    )

    assert purged.status_code == 200
    assert await _events(session, tenant) == []


async def test_a_change_committed_meanwhile_is_the_from_of_the_next_event(
    fresh_database_url: str,
) -> None:
    """A refresh that waits for a sync's transaction on the same order records its change from
    what the sync committed, not from what the order was when the refresh began."""
    record = order_record(order_status=OrderStatus.CONFIRMED)
    shipped = _newer(record, order_status=OrderStatus.SHIPPED)
    delivered = _newer(shipped, order_status=OrderStatus.DELIVERED)
    engine = create_engine(fresh_database_url, pool_size=3)
    sessionmaker = create_sessionmaker(engine)
    try:
        async with transaction(sessionmaker) as session:
            tenant = await make_tenant(session, "ecomlg-001")
            await upsert_orders(session, tenant.id, [record])

        async def refresh() -> None:
            async with transaction(sessionmaker) as session:
                await upsert_orders(session, tenant.id, [delivered], source=EventSource.REFRESH)

        async with transaction(sessionmaker) as sync:
            await upsert_orders(sync, tenant.id, [shipped], source=EventSource.SYNC)
            refreshing = asyncio.create_task(refresh())
            await _until_a_session_waits_for_a_lock(fresh_database_url)
            assert not refreshing.done()
        await refreshing

        async with transaction(sessionmaker) as session:
            events = [event[:3] for event in await _events(session, tenant)]
    finally:
        await engine.dispose()
    assert events == [
        ("orderStatus", "CONFIRMED", "SHIPPED"),
        ("orderStatus", "SHIPPED", "DELIVERED"),
    ]


async def _until_a_session_waits_for_a_lock(url: str) -> None:
    async with await psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True) as conn:
        for _ in range(500):
            cursor = await conn.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if (await cursor.fetchone()) == (1,):
                return
            await asyncio.sleep(0.02)
    raise AssertionError("the refresh never waited for the sync's lock")

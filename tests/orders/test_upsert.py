from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.orders.models import Order, OrderItem
from keybuzz.orders.records import ItemRecord, OrderStatus, SavStatus
from keybuzz.orders.repository import set_sav_status
from keybuzz.orders.service import upsert_orders
from tests.factories import TenantCredentials, order_record


async def _orders(session: AsyncSession, tenant: TenantCredentials) -> list[Order]:
    result = await session.scalars(
        select(Order)
        .where(Order.tenant_id == tenant.id)
        .order_by(Order.external_order_id)
        .execution_options(populate_existing=True)  # upserts write behind the session's back
    )
    return list(result)


async def _items(session: AsyncSession, tenant: TenantCredentials) -> list[OrderItem]:
    result = await session.scalars(
        select(OrderItem)
        .where(OrderItem.tenant_id == tenant.id)
        .order_by(OrderItem.external_item_id)
    )
    return list(result)


async def _snapshot(session: AsyncSession, tenant: TenantCredentials) -> list[tuple[object, ...]]:
    """Every stored value of the tenant's orders and items, with each row's version (xmin)."""
    rows = await session.execute(
        text(
            "SELECT o.xmin::text, o.*, i.xmin::text, i.* FROM orders o "
            "JOIN order_items i ON i.order_id = o.id AND i.tenant_id = o.tenant_id "
            "WHERE o.tenant_id = :tenant ORDER BY i.id"
        ),
        {"tenant": tenant.id},
    )
    return [tuple(row) for row in rows]


async def test_same_batch_twice_stores_the_same_rows_and_rewrites_none(
    session: AsyncSession, tenant: TenantCredentials
) -> None:
    batch = [order_record() for _ in range(30)]

    first = await upsert_orders(session, tenant.id, batch)
    before = await _snapshot(session, tenant)
    second = await upsert_orders(session, tenant.id, batch)

    assert (first.orders_written, first.items_written) == (30, 60)
    assert (second.orders_written, second.items_written) == (0, 0)
    assert await _snapshot(session, tenant) == before
    assert len(before) == 60


async def test_a_batch_repeating_an_order_keeps_the_newest_version(
    session: AsyncSession, tenant: TenantCredentials
) -> None:
    old = order_record(order_status=OrderStatus.CONFIRMED)
    new = dataclasses.replace(
        old,
        order_status=OrderStatus.SHIPPED,
        external_updated_at=old.external_updated_at + dt.timedelta(hours=2),
    )

    await upsert_orders(session, tenant.id, [new, old])

    [stored] = await _orders(session, tenant)
    assert stored.order_status is OrderStatus.SHIPPED


async def test_newer_data_wins_and_older_data_is_ignored(
    session: AsyncSession, tenant: TenantCredentials
) -> None:
    original = order_record(order_status=OrderStatus.CONFIRMED)
    newer = dataclasses.replace(
        original,
        order_status=OrderStatus.SHIPPED,
        tracking_code="1Z999",
        external_updated_at=original.external_updated_at + dt.timedelta(hours=1),
    )
    stale = dataclasses.replace(
        original,
        order_status=OrderStatus.CANCELLED,
        external_updated_at=original.external_updated_at - dt.timedelta(hours=1),
    )

    await upsert_orders(session, tenant.id, [original])
    await upsert_orders(session, tenant.id, [newer])
    result = await upsert_orders(session, tenant.id, [stale])

    [stored] = await _orders(session, tenant)
    assert result.orders_written == 0
    assert stored.order_status is OrderStatus.SHIPPED
    assert stored.tracking_code == "1Z999"
    assert stored.external_updated_at == newer.external_updated_at


async def test_sav_status_survives_every_marketplace_update(
    session: AsyncSession, tenant: TenantCredentials
) -> None:
    record = order_record()
    await upsert_orders(session, tenant.id, [record])
    [stored] = await _orders(session, tenant)
    await set_sav_status(session, tenant.id, stored.id, SavStatus.IN_PROGRESS)

    newer = dataclasses.replace(
        record,
        order_status=OrderStatus.DELIVERED,
        external_updated_at=record.external_updated_at + dt.timedelta(days=1),
    )
    await upsert_orders(session, tenant.id, [newer])

    [stored] = await _orders(session, tenant)
    assert stored.order_status is OrderStatus.DELIVERED
    assert stored.sav_status is SavStatus.IN_PROGRESS


async def test_a_source_without_buyer_details_keeps_the_known_ones(
    session: AsyncSession, tenant: TenantCredentials
) -> None:
    from_api = order_record(customer_name="Élodie Martin", customer_email="e@example.fr")
    from_report = dataclasses.replace(
        from_api,
        customer_name=None,
        customer_email=None,
        shipping_address=None,
        order_status=OrderStatus.SHIPPED,
        external_updated_at=from_api.external_updated_at + dt.timedelta(minutes=5),
    )

    await upsert_orders(session, tenant.id, [from_api])
    await upsert_orders(session, tenant.id, [from_report])

    [stored] = await _orders(session, tenant)
    assert stored.order_status is OrderStatus.SHIPPED
    assert (stored.customer_name, stored.customer_email) == ("Élodie Martin", "e@example.fr")
    assert stored.shipping_address == from_api.shipping_address


async def test_items_follow_the_newest_order_version(
    session: AsyncSession, tenant: TenantCredentials
) -> None:
    record = order_record()
    assert record.items is not None
    kept, dropped = record.items
    changed_kept = dataclasses.replace(kept, quantity=3, unit_price=Decimal("11.00"))
    added = ItemRecord(external_item_id="new-line", sku="SKU-NEW", quantity=1)
    newer = dataclasses.replace(
        record,
        items=(changed_kept, added),
        external_updated_at=record.external_updated_at + dt.timedelta(hours=1),
    )

    await upsert_orders(session, tenant.id, [record])
    await upsert_orders(session, tenant.id, [newer])

    items = {item.external_item_id: item for item in await _items(session, tenant)}
    assert set(items) == {kept.external_item_id, "new-line"}
    assert (items[kept.external_item_id].quantity, items[kept.external_item_id].unit_price) == (
        3,
        Decimal("11.00"),
    )
    assert dropped.external_item_id not in items


async def test_an_order_without_item_data_keeps_its_stored_items(
    session: AsyncSession, tenant: TenantCredentials
) -> None:
    record = order_record()
    without_items = dataclasses.replace(
        record,
        items=None,
        order_status=OrderStatus.SHIPPED,
        external_updated_at=record.external_updated_at + dt.timedelta(hours=1),
    )

    await upsert_orders(session, tenant.id, [record])
    await upsert_orders(session, tenant.id, [without_items])

    assert len(await _items(session, tenant)) == 2
    [stored] = await _orders(session, tenant)
    assert stored.order_status is OrderStatus.SHIPPED


async def test_items_arriving_later_for_an_unchanged_order_are_stored(
    session: AsyncSession, tenant: TenantCredentials
) -> None:
    record = order_record()
    await upsert_orders(session, tenant.id, [dataclasses.replace(record, items=None)])
    assert await _items(session, tenant) == []

    await upsert_orders(session, tenant.id, [record])

    assert len(await _items(session, tenant)) == 2


async def test_the_same_external_id_in_two_tenants_is_two_orders(
    session: AsyncSession, tenant: TenantCredentials, other_tenant: TenantCredentials
) -> None:
    record = order_record()

    await upsert_orders(session, tenant.id, [record])
    await upsert_orders(session, other_tenant.id, [dataclasses.replace(record, customer_name="X")])

    [mine] = await _orders(session, tenant)
    [theirs] = await _orders(session, other_tenant)
    assert mine.id != theirs.id
    assert mine.customer_name == record.customer_name


async def test_large_batches_are_split_and_all_stored(
    session: AsyncSession, tenant: TenantCredentials
) -> None:
    batch = [order_record(items=None) for _ in range(4500)]

    result = await upsert_orders(session, tenant.id, batch)

    assert result.orders_written == 4500
    assert len(await _orders(session, tenant)) == 4500

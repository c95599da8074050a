from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from keybuzz.orders.models import Order, OrderItem
from keybuzz.orders.records import Detail, ItemRecord, OrderRecord, OrderStatus, SavStatus
from keybuzz.orders.repository import set_sav_status
from keybuzz.orders.service import upsert_orders
from keybuzz.tenants.models import Tenant
from tests.factories import (
    TenantCredentials,
    api_record,
    make_tenant,
    order_record,
    report_record,
)


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


# --- A first import, COPYed in ----------------------------------------------------------------

_STORED_VALUES = (
    "SELECT o.marketplace, o.external_order_id, o.order_ref, o.order_date, o.order_status, "
    "o.customer_name, o.total_amount, o.shipping_address, o.items_digest, o.detail, "
    "o.enriched_at IS NOT NULL, o.sav_status, o.search_text, i.external_item_id, i.sku, "
    "i.quantity, i.unit_price FROM orders o JOIN order_items i ON i.order_id = o.id "
    "AND i.tenant_id = :tenant "
    "WHERE o.tenant_id = :tenant ORDER BY o.external_order_id, i.external_item_id"
)


async def _stored_values(session: AsyncSession, tenant: TenantCredentials) -> list[tuple[Any, ...]]:
    rows = await session.execute(text(_STORED_VALUES), {"tenant": tenant.id})
    return [tuple(row) for row in rows]


async def test_new_orders_copied_in_are_stored_as_the_merge_stores_them(
    session: AsyncSession, tenant: TenantCredentials, other_tenant: TenantCredentials
) -> None:
    reports = [report_record() for _ in range(30)]
    batch = [*reports[:20], *(api_record(report) for report in reports[20:])]

    copied = await upsert_orders(session, tenant.id, batch, expect_new=True)
    merged = await upsert_orders(session, other_tenant.id, batch)

    assert copied == merged
    assert await _stored_values(session, tenant) == await _stored_values(session, other_tenant)
    assert len(await _stored_values(session, tenant)) == 60


async def test_an_order_stored_meanwhile_makes_the_batch_merge_instead(
    session: AsyncSession, tenant: TenantCredentials
) -> None:
    older = order_record(order_status=OrderStatus.CONFIRMED)
    await upsert_orders(session, tenant.id, [older])
    newer = dataclasses.replace(
        older,
        order_status=OrderStatus.SHIPPED,
        external_updated_at=older.external_updated_at + dt.timedelta(hours=1),
    )

    result = await upsert_orders(
        session, tenant.id, [newer, *(order_record() for _ in range(9))], expect_new=True
    )

    stored = await _orders(session, tenant)
    assert result.orders_written == 10
    assert len(stored) == 10
    [changed] = [o for o in stored if o.external_order_id == older.external_order_id]
    assert changed.order_status is OrderStatus.SHIPPED


# Values COPY's text format must escape, or could misread: its delimiters, its escape character,
# its NULL marker and end-of-data marker written as text, characters Python calls unprintable
# that need no escape, and numbers and times in their less usual forms.
_AWKWARD_TEXTS = (
    "tab\there",
    "new\nline",
    "carriage\r\nreturn",
    "back\\slash",
    "\\N",
    "\\\\N",
    "\\.",
    "\\t not a tab",
    "trailing\\",
    "",
    "Crème brûlée 🍮 ß",
    "vertical\x0btab, unit\x1fseparator, line\u2028separator",
)
_AWKWARD_PRICES = (Decimal("1E+2"), Decimal("-0.00"), Decimal("0.000001"), Decimal("NaN"))


def _awkward_records() -> list[OrderRecord]:
    paris = dt.timezone(dt.timedelta(hours=2))
    records = []
    for number, value in enumerate(_AWKWARD_TEXTS):
        record = order_record(
            customer_name=value,
            customer_email=None,
            carrier=value or None,
            total_amount=_AWKWARD_PRICES[number % len(_AWKWARD_PRICES)],
            shipping_address={"city": value, "addressLine1": "12 rue de l'Été\t\\"},
            order_date=dt.datetime(2026, 11, 3, 14, 5, 6, 123456, tzinfo=paris),
        )
        items = tuple(
            dataclasses.replace(item, title=value, sku=f"{value}-{line}", unit_price=price)
            for line, (item, price) in enumerate(
                zip(record.items or (), (_AWKWARD_PRICES[number % 4], None), strict=True)
            )
        )
        records.append(dataclasses.replace(record, items=items))
    return records


def _as_stored(records: list[OrderRecord]) -> list[tuple[Any, ...]]:
    """What ``_stored`` should read back: every value as given (NaN compared as text)."""
    return sorted(
        (
            record.external_order_id,
            record.customer_name,
            record.customer_email,
            record.carrier,
            str(record.total_amount),
            record.shipping_address,
            record.order_date,
            item.external_item_id,
            item.sku,
            item.title,
            None if item.unit_price is None else str(item.unit_price),
        )
        for record in records
        for item in record.items or ()
    )


async def _stored(session: AsyncSession, tenant: TenantCredentials) -> list[tuple[Any, ...]]:
    rows = await session.execute(
        text(
            "SELECT o.external_order_id, o.customer_name, o.customer_email, o.carrier, "
            "o.total_amount::text, o.shipping_address, o.order_date, i.external_item_id, i.sku, "
            "i.title, i.unit_price::text FROM orders o JOIN order_items i ON i.order_id = o.id "
            "AND i.tenant_id = :tenant WHERE o.tenant_id = :tenant"
        ),
        {"tenant": tenant.id},
    )
    return sorted(tuple(row) for row in rows)


async def test_every_value_is_stored_exactly_as_given_copied_in_or_merged(
    session: AsyncSession, tenant: TenantCredentials, other_tenant: TenantCredentials
) -> None:
    records = _awkward_records()

    copied = await upsert_orders(session, tenant.id, records, expect_new=True)
    merged = await upsert_orders(session, other_tenant.id, records)

    assert copied.orders_written == merged.orders_written == len(_AWKWARD_TEXTS)
    expected = _as_stored(records)
    # PostgreSQL's numeric has neither exponent nor negative zero: 1E+2 reads back as 100.
    read_as = {"1E+2": "100", "-0.00": "0.00"}
    expected = [
        tuple(read_as.get(v, v) if isinstance(v, str) else v for v in row) for row in expected
    ]
    assert await _stored(session, tenant) == expected
    assert await _stored(session, other_tenant) == expected


async def test_orders_copied_in_belong_to_the_callers_transaction(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        tenant = await make_tenant(session, "copy-rollback-001")
        await session.commit()
    try:
        async with AsyncSession(engine) as session:
            # The upsert is the first statement of the session's transaction.
            await upsert_orders(session, tenant.id, [order_record()], expect_new=True)
            await session.rollback()
        async with AsyncSession(engine) as session:
            assert await _orders(session, tenant) == []
    finally:
        async with AsyncSession(engine) as session:
            await session.execute(delete(Tenant).where(Tenant.id == tenant.id))
            await session.commit()


# --- Report lines, then the API's ---------------------------------------------------------------


async def test_api_lines_replacing_report_lines_keep_their_rows_and_ids(
    session: AsyncSession, tenant: TenantCredentials
) -> None:
    report = report_record()
    api = api_record(report)
    assert api.items is not None
    first, second = api.items
    api = dataclasses.replace(
        api, items=(dataclasses.replace(first, title="Tasse à café, 30 cl"), second)
    )
    await upsert_orders(session, tenant.id, [report])
    rows_by_sku = {item.sku: item.id for item in await _items(session, tenant)}

    # The same state of the order (same update time), with its details and real line ids.
    result = await upsert_orders(session, tenant.id, [api])

    items = await _items(session, tenant)
    assert {item.sku: item.id for item in items} == rows_by_sku
    assert {item.sku: item.external_item_id for item in items} == {
        item.sku: item.external_item_id for item in api.items
    }
    assert {item.sku: item.title for item in items}[first.sku] == "Tasse à café, 30 cl"
    assert (result.orders_written, result.items_written) == (1, 2)


async def test_lines_are_matched_one_to_one_on_sku_asin_and_quantity(
    session: AsyncSession, tenant: TenantCredentials
) -> None:
    mug = ItemRecord(external_item_id="-", sku="MUG", asin="B0MUG", quantity=1)
    teapot = ItemRecord(external_item_id="-", sku="POT", asin="B0POT", quantity=2)
    gone = ItemRecord(external_item_id="-", sku="GONE", asin="B0GONE", quantity=1)
    report = report_record(items=(mug, mug, teapot, gone))
    assert [item.external_item_id for item in report.items or ()] == [
        "MUG",
        "MUG#2",
        "POT",
        "GONE",
    ]
    await upsert_orders(session, tenant.id, [report])
    stored = {item.external_item_id: item.id for item in await _items(session, tenant)}

    api = api_record(
        report,
        items=(
            dataclasses.replace(mug, external_item_id="A1"),
            dataclasses.replace(mug, external_item_id="A2"),
            dataclasses.replace(teapot, external_item_id="A3", quantity=1),  # not the same line
            ItemRecord(external_item_id="A4", sku="NEW", asin="B0NEW", quantity=1),
        ),
        external_updated_at=report.external_updated_at + dt.timedelta(minutes=10),
    )
    await upsert_orders(session, tenant.id, [api])

    items = {item.external_item_id: item.id for item in await _items(session, tenant)}
    assert set(items) == {"A1", "A2", "A3", "A4"}
    assert {items["A1"], items["A2"]} == {stored["MUG"], stored["MUG#2"]}
    assert items["A3"] not in stored.values()
    assert items["A4"] not in stored.values()


async def test_a_report_after_the_api_keeps_what_the_api_brought(
    session: AsyncSession, tenant: TenantCredentials
) -> None:
    report = report_record()
    api = api_record(report)
    later_report = dataclasses.replace(
        report,
        order_status=OrderStatus.SHIPPED,
        external_updated_at=report.external_updated_at + dt.timedelta(hours=1),
    )
    await upsert_orders(session, tenant.id, [report])
    await upsert_orders(session, tenant.id, [api])

    result = await upsert_orders(session, tenant.id, [later_report])
    before_replay = await _snapshot(session, tenant)
    replay = await upsert_orders(session, tenant.id, [later_report])

    [stored] = await _orders(session, tenant)
    assert result.orders_written == 1
    assert stored.order_status is OrderStatus.SHIPPED
    assert stored.shipping_address == api.shipping_address
    assert (stored.customer_name, stored.total_amount) == (api.customer_name, api.total_amount)
    assert {item.external_item_id for item in await _items(session, tenant)} == {
        item.external_item_id for item in api.items or ()
    }
    assert (replay.orders_written, replay.items_written) == (0, 0)
    assert await _snapshot(session, tenant) == before_replay


# --- Enrichment ---------------------------------------------------------------------------------


async def test_an_order_is_enriched_once_by_the_first_api_record(
    session: AsyncSession, tenant: TenantCredentials
) -> None:
    report = report_record()
    api = api_record(report)

    from_report = await upsert_orders(session, tenant.id, [report])
    [stored] = await _orders(session, tenant)
    assert (stored.enriched_at, from_report.orders_enriched) == (None, 0)
    assert stored.total_amount is None

    from_api = await upsert_orders(session, tenant.id, [api])
    [stored] = await _orders(session, tenant)
    assert from_api.orders_enriched == 1
    assert stored.enriched_at is not None
    assert stored.total_amount == Decimal("42.50")

    before_replay = await _snapshot(session, tenant)
    replay = await upsert_orders(session, tenant.id, [api])
    assert (replay.orders_written, replay.orders_enriched) == (0, 0)
    assert await _snapshot(session, tenant) == before_replay

    long_ago = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    await session.execute(
        update(Order).where(Order.tenant_id == tenant.id).values(enriched_at=long_ago)
    )
    newer = dataclasses.replace(
        api,
        order_status=OrderStatus.SHIPPED,
        external_updated_at=api.external_updated_at + dt.timedelta(hours=1),
    )
    again = await upsert_orders(session, tenant.id, [newer])
    [stored] = await _orders(session, tenant)
    assert (again.orders_written, again.orders_enriched) == (1, 0)
    assert stored.enriched_at == long_ago


async def test_orders_enriched_counts_new_orders_from_the_api_but_not_reports(
    session: AsyncSession, tenant: TenantCredentials
) -> None:
    batch = [order_record(detail=Detail.FULL) for _ in range(3)] + [report_record()]

    result = await upsert_orders(session, tenant.id, batch)

    assert (result.orders_written, result.orders_enriched) == (4, 3)
    stored = await _orders(session, tenant)
    assert sum(order.enriched_at is not None for order in stored) == 3


async def test_an_older_api_record_enriches_nothing(
    session: AsyncSession, tenant: TenantCredentials
) -> None:
    report = report_record()
    stale_api = dataclasses.replace(
        api_record(report),
        external_updated_at=report.external_updated_at - dt.timedelta(hours=1),
    )
    await upsert_orders(session, tenant.id, [report])

    result = await upsert_orders(session, tenant.id, [stale_api])

    [stored] = await _orders(session, tenant)
    assert (result.orders_written, result.orders_enriched) == (0, 0)
    assert (stored.enriched_at, stored.customer_name) == (None, None)

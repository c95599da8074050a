"""The one write path for marketplace orders: batched, idempotent, newer-wins.

A batch is staged with COPY into temporary tables and merged with set-based statements. Rules:

- the unique keys are (tenant, marketplace, external order id) and (order, external item id);
- a stored order is only overwritten by data at least as new (``external_updated_at``); data equal
  to what is stored changes nothing, so replaying a batch writes no row;
- a field the incoming source does not carry (``None``) keeps its stored value: a report without
  buyer names never erases the names an earlier API call brought;
- helpdesk-owned fields (``sav_status``) are never written by marketplace data;
- an order's items follow its newest version: lines it no longer has are removed.

Every statement reaches the big tables through a unique index (``ON CONFLICT`` probes, or the ids
the order merge returns), never through a join the planner could turn into a scan of a tenant's
whole history when statistics lag behind a large backfill.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.db import raw_connection
from keybuzz.orders.records import ItemRecord, OrderRecord
from keybuzz.tenants.models import TenantId

BATCH_SIZE = 2000


@dataclass(slots=True, frozen=True)
class UpsertResult:
    orders_received: int
    orders_written: int
    items_written: int


# Columns merged with "keep the stored value when the source is silent".
_OPTIONAL_ORDER_COLUMNS = (
    "marketplace_id",
    "customer_name",
    "customer_email",
    "currency",
    "total_amount",
    "delivery_status",
    "carrier",
    "tracking_code",
    "shipping_address",
    "fulfillment_channel",
    "latest_ship_date",
    "latest_delivery_date",
    "shipped_at",
    "delivered_at",
    "items_digest",
)
# Columns every source carries: the incoming value replaces the stored one.
_REQUIRED_ORDER_COLUMNS = ("order_ref", "order_date", "order_status")

_STAGE_ORDER_COLUMNS = (
    "marketplace",
    "external_order_id",
    "external_updated_at",
    *_REQUIRED_ORDER_COLUMNS,
    *_OPTIONAL_ORDER_COLUMNS,
)
_OPTIONAL_ITEM_COLUMNS = ("sku", "asin", "title", "unit_price")
_STAGE_ITEM_COLUMNS = (
    "marketplace",
    "external_order_id",
    "external_item_id",
    "quantity",
    *_OPTIONAL_ITEM_COLUMNS,
)

_CREATE_STAGE = """
CREATE TEMP TABLE kb_stage_orders (
    marketplace text, external_order_id text, external_updated_at timestamptz,
    order_ref text, order_date timestamptz, order_status order_status,
    marketplace_id text, customer_name text, customer_email text, currency text,
    total_amount numeric, delivery_status delivery_status, carrier text, tracking_code text,
    shipping_address jsonb, fulfillment_channel text, latest_ship_date timestamptz,
    latest_delivery_date timestamptz, shipped_at timestamptz, delivered_at timestamptz,
    items_digest text, order_id uuid, replaced boolean
) ON COMMIT DROP;
CREATE TEMP TABLE kb_stage_items (
    marketplace text, external_order_id text, external_item_id text, quantity integer,
    sku text, asin text, title text, unit_price numeric
) ON COMMIT DROP;
"""
# Temporary tables have no statistics until analysed; without them the merges plan badly.
_ANALYZE_STAGE = "ANALYZE kb_stage_orders; ANALYZE kb_stage_items;"
_DROP_STAGE = "DROP TABLE kb_stage_orders; DROP TABLE kb_stage_items;"


def _merge_orders_sql() -> str:
    """Merge staged orders; note in the stage the id of each order written (and if it existed)."""
    columns = ("external_updated_at", *_REQUIRED_ORDER_COLUMNS, *_OPTIONAL_ORDER_COLUMNS)
    assignments = [f"{name} = EXCLUDED.{name}" for name in _REQUIRED_ORDER_COLUMNS]
    assignments += [
        f"{name} = coalesce(EXCLUDED.{name}, o.{name})" for name in _OPTIONAL_ORDER_COLUMNS
    ]
    changed = [f"EXCLUDED.{name} IS DISTINCT FROM o.{name}" for name in _REQUIRED_ORDER_COLUMNS]
    changed += [
        f"(EXCLUDED.{name} IS NOT NULL AND EXCLUDED.{name} IS DISTINCT FROM o.{name})"
        for name in _OPTIONAL_ORDER_COLUMNS
    ]
    return f"""
WITH written AS (
    INSERT INTO orders AS o (tenant_id, marketplace, external_order_id, {", ".join(columns)})
    SELECT %(tenant)s, s.marketplace, s.external_order_id,
           {", ".join(f"s.{name}" for name in columns)}
    FROM kb_stage_orders s
    ON CONFLICT (tenant_id, marketplace, external_order_id) DO UPDATE SET
        external_updated_at = EXCLUDED.external_updated_at,
        {", ".join(assignments)},
        updated_at = now()
    WHERE EXCLUDED.external_updated_at > o.external_updated_at
       OR (EXCLUDED.external_updated_at = o.external_updated_at AND ({" OR ".join(changed)}))
    RETURNING o.id, o.marketplace, o.external_order_id, o.xmax <> 0 AS replaced
)
UPDATE kb_stage_orders s SET order_id = w.id, replaced = w.replaced
FROM written w
WHERE s.marketplace = w.marketplace AND s.external_order_id = w.external_order_id
"""


def _merge_items_sql() -> str:
    assignments = ["quantity = EXCLUDED.quantity"]
    assignments += [
        f"{name} = coalesce(EXCLUDED.{name}, i.{name})" for name in _OPTIONAL_ITEM_COLUMNS
    ]
    changed = ["EXCLUDED.quantity IS DISTINCT FROM i.quantity"]
    changed += [
        f"(EXCLUDED.{name} IS NOT NULL AND EXCLUDED.{name} IS DISTINCT FROM i.{name})"
        for name in _OPTIONAL_ITEM_COLUMNS
    ]
    item_columns = ("external_item_id", "quantity", *_OPTIONAL_ITEM_COLUMNS)
    return f"""
INSERT INTO order_items AS i (tenant_id, order_id, {", ".join(item_columns)})
SELECT %(tenant)s, s.order_id, {", ".join(f"si.{name}" for name in item_columns)}
FROM kb_stage_items si
JOIN kb_stage_orders s ON s.marketplace = si.marketplace
    AND s.external_order_id = si.external_order_id
WHERE s.order_id IS NOT NULL
ON CONFLICT (order_id, external_item_id) DO UPDATE SET {", ".join(assignments)}
WHERE {" OR ".join(changed)}
"""


# Only orders that existed before this batch and came with their full item list can have lines
# to drop; a first load skips this statement entirely.
_DELETE_STALE_ITEMS = """
DELETE FROM order_items i
USING kb_stage_orders s
WHERE s.replaced AND s.items_digest IS NOT NULL
  AND i.order_id = s.order_id AND i.tenant_id = %(tenant)s
  AND NOT EXISTS (
      SELECT 1 FROM kb_stage_items si
      WHERE si.marketplace = s.marketplace AND si.external_order_id = s.external_order_id
        AND si.external_item_id = i.external_item_id)
"""
_ANY_REPLACED_WITH_ITEMS = (
    "SELECT EXISTS (SELECT 1 FROM kb_stage_orders WHERE replaced AND items_digest IS NOT NULL)"
)

_MERGE_ORDERS = _merge_orders_sql()
_MERGE_ITEMS = _merge_items_sql()


def latest_per_order(records: Iterable[OrderRecord]) -> list[OrderRecord]:
    """One record per order: the newest; on a tie, the last one given."""
    newest: dict[tuple[str, str], OrderRecord] = {}
    for record in records:
        key = (record.marketplace, record.external_order_id)
        kept = newest.get(key)
        if kept is None or record.external_updated_at >= kept.external_updated_at:
            newest[key] = record
    return list(newest.values())


def _unique_items(record: OrderRecord) -> list[ItemRecord]:
    return list({item.external_item_id: item for item in record.items or ()}.values())


def items_digest(items: Sequence[ItemRecord]) -> str:
    """A fingerprint of an item list, so that a changed list makes its order count as changed."""
    lines = sorted(
        f"{i.external_item_id}\x1f{i.quantity}\x1f{i.sku}\x1f{i.asin}\x1f{i.title}\x1f{i.unit_price}"
        for i in items
    )
    return hashlib.blake2b("\x1e".join(lines).encode(), digest_size=16).hexdigest()


def _order_row(record: OrderRecord, items: list[ItemRecord]) -> tuple[Any, ...]:
    return (
        record.marketplace,
        record.external_order_id,
        record.external_updated_at,
        record.order_ref or record.external_order_id,
        record.order_date,
        record.order_status.value,
        record.marketplace_id,
        record.customer_name,
        record.customer_email,
        record.currency,
        record.total_amount,
        record.delivery_status.value if record.delivery_status is not None else None,
        record.carrier,
        record.tracking_code,
        Jsonb(record.shipping_address) if record.shipping_address is not None else None,
        record.fulfillment_channel,
        record.latest_ship_date,
        record.latest_delivery_date,
        record.shipped_at,
        record.delivered_at,
        items_digest(items) if record.items is not None else None,
    )


def _item_row(record: OrderRecord, item: ItemRecord) -> tuple[Any, ...]:
    return (
        record.marketplace,
        record.external_order_id,
        item.external_item_id,
        item.quantity,
        item.sku,
        item.asin,
        item.title,
        item.unit_price,
    )


async def upsert_orders(
    session: AsyncSession, tenant_id: TenantId, records: Sequence[OrderRecord]
) -> UpsertResult:
    """Merge ``records`` into the tenant's orders, in batches, inside the caller's transaction."""
    unique = latest_per_order(records)
    conn = await raw_connection(session)
    orders_written = items_written = 0
    for start in range(0, len(unique), BATCH_SIZE):
        written, items = await _merge_batch(conn, tenant_id, unique[start : start + BATCH_SIZE])
        orders_written += written
        items_written += items
    return UpsertResult(len(records), orders_written, items_written)


async def _merge_batch(
    conn: AsyncConnection[Any], tenant_id: TenantId, batch: Sequence[OrderRecord]
) -> tuple[int, int]:
    params = {"tenant": tenant_id}
    async with conn.cursor() as cur:
        await cur.execute(_CREATE_STAGE)
        await _copy_batch(cur, batch)
        await cur.execute(_ANALYZE_STAGE)
        await cur.execute(_MERGE_ORDERS, params)
        orders_written = cur.rowcount
        await cur.execute(_MERGE_ITEMS, params)
        items_written = cur.rowcount
        await cur.execute(_ANY_REPLACED_WITH_ITEMS)
        row = await cur.fetchone()
        if row is not None and row[0]:
            await cur.execute(_DELETE_STALE_ITEMS, params)
        await cur.execute(_DROP_STAGE)
    return orders_written, items_written


async def _copy_batch(cur: Any, batch: Sequence[OrderRecord]) -> None:
    item_lists = [_unique_items(record) for record in batch]
    columns = ", ".join(_STAGE_ORDER_COLUMNS)
    async with cur.copy(f"COPY kb_stage_orders ({columns}) FROM STDIN") as copy:
        for record, items in zip(batch, item_lists, strict=True):
            await copy.write_row(_order_row(record, items))
    columns = ", ".join(_STAGE_ITEM_COLUMNS)
    async with cur.copy(f"COPY kb_stage_items ({columns}) FROM STDIN") as copy:
        for record, items in zip(batch, item_lists, strict=True):
            for item in items:
                await copy.write_row(_item_row(record, item))

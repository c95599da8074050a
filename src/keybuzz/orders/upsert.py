"""The one write path for marketplace orders: batched, idempotent, newer-wins.

A batch is staged with COPY into temporary tables and merged with set-based statements. Rules:

- the unique keys are (tenant, marketplace, external order id) and (order, external item id);
- a stored order is only overwritten by data at least as new (``external_updated_at``); data equal
  to what is stored changes nothing, so replaying a batch writes no row;
- a field the incoming source does not carry (``None``) keeps its stored value: a report without
  buyer names never erases the names an earlier API call brought;
- of two views of the same version of an order (equal ``external_updated_at``), the more detailed
  one stands (``OrderRecord.detail``: a report, v0, v2026 with packages): a less detailed one
  writes nothing, so a report never undoes what an order API said, nor v0 a delivery that
  v2026's packages showed, and a second backfill of unchanged orders writes no row;
- what an API record brought (``OrderRecord.enriched``) is never replaced by a report's thinner
  version: once an order is enriched, even a newer report rewrites neither its address nor its
  item list (whose lines carry Amazon's order-item ids); the first enriched record sets
  ``enriched_at``;
- helpdesk-owned fields (``sav_status``) are never written by marketplace data;
- an order's items follow its newest version: lines it no longer has are removed, except that a
  stored line the new list does not name is first matched, one to one, to a new line of the same
  SKU, ASIN and quantity, and renamed in place: a report line (known by its SKU) replaced by the
  API's line keeps its row and id;
- every change to ``order_status``, ``delivery_status`` or ``tracking_code`` is appended to
  ``order_events`` with the caller's ``source``; an order created by a sync or a refresh gets its
  first values as events from null, an order created by a backfill none (history is imported,
  not witnessed).

Every statement reaches the big tables through a unique index (``ON CONFLICT`` probes, or the ids
the order merge returns), never through a join the planner could turn into a scan of a tenant's
whole history when statistics lag behind a large backfill.

The timeline is written here, not by a trigger: the source is an explicit argument instead of a
session setting that a forgotten ``set_config`` would leave stale or empty, a first import pays
nothing for it (a trigger with transition tables would capture every inserted row only to drop
it), and the one other writer of these fields (the helpdesk's ``sav_status``) records its own
event (``repository.set_sav_status``).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from psycopg import AsyncConnection
from psycopg.errors import UniqueViolation
from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.db import raw_connection, uuid7_hexes
from keybuzz.orders.models import EventField, EventSource
from keybuzz.orders.records import ItemRecord, OrderRecord
from keybuzz.tenants.models import TenantId

BATCH_SIZE = 2000


@dataclass(slots=True, frozen=True)
class UpsertResult:
    orders_received: int
    orders_written: int
    items_written: int
    orders_enriched: int = 0
    """Orders that an API record brought details to for the first time."""
    events_written: int = 0


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
    "fulfillment_channel",
    "latest_ship_date",
    "latest_delivery_date",
    "shipped_at",
    "delivered_at",
)
# Optional columns a report carries only in part (an address without street, lines without
# order-item ids): on an enriched order, only another enriched record replaces them.
_API_KEPT_ORDER_COLUMNS = ("shipping_address", "items_digest")
# Columns every source carries: the incoming value replaces the stored one.
_REQUIRED_ORDER_COLUMNS = ("order_ref", "order_date", "order_status")

_STAGE_ORDER_COLUMNS = (
    "marketplace",
    "external_order_id",
    "external_updated_at",
    *_REQUIRED_ORDER_COLUMNS,
    *_OPTIONAL_ORDER_COLUMNS,
    *_API_KEPT_ORDER_COLUMNS,
    "enriched",
    "detail",
)
_OPTIONAL_ITEM_COLUMNS = ("sku", "asin", "title", "unit_price")
_STAGE_ITEM_COLUMNS = (
    "marketplace",
    "external_order_id",
    "external_item_id",
    "quantity",
    *_OPTIONAL_ITEM_COLUMNS,
)
# The fields of the timeline the upsert writes, as (event field, orders column).
_EVENT_COLUMNS = (
    (EventField.ORDER_STATUS, "order_status"),
    (EventField.DELIVERY_STATUS, "delivery_status"),
    (EventField.TRACKING_CODE, "tracking_code"),
)

# The stage's last columns are the merge's answers, per order: its id if written, whether it
# existed, whether its item list is to be applied, whether it became enriched, and the event
# fields' values before and after.
_CREATE_STAGE = f"""
CREATE TEMP TABLE kb_stage_orders (
    marketplace text, external_order_id text, external_updated_at timestamptz,
    order_ref text, order_date timestamptz, order_status order_status,
    marketplace_id text, customer_name text, customer_email text, currency text,
    total_amount numeric, delivery_status delivery_status, carrier text, tracking_code text,
    fulfillment_channel text, latest_ship_date timestamptz, latest_delivery_date timestamptz,
    shipped_at timestamptz, delivered_at timestamptz, shipping_address jsonb, items_digest text,
    enriched boolean, detail smallint,
    order_id uuid, replaced boolean, items_apply boolean, became_enriched boolean,
    {", ".join(f"old_{column} text, new_{column} text" for _, column in _EVENT_COLUMNS)}
) ON COMMIT DROP;
CREATE TEMP TABLE kb_stage_items (
    marketplace text, external_order_id text, external_item_id text, quantity integer,
    sku text, asin text, title text, unit_price numeric
) ON COMMIT DROP;
"""
# Temporary tables have no statistics until analysed; without them the merges plan badly.
_ANALYZE_STAGE = "ANALYZE kb_stage_orders; ANALYZE kb_stage_items;"
# Again once the merge has filled in its answers: the statements on stored items select by them,
# and with the first statistics (every answer null) the planner expects one changed order and
# picks nested loops that grow with the square of the batch.
_ANALYZE_ANSWERS = "ANALYZE kb_stage_orders"
_DROP_STAGE = "DROP TABLE kb_stage_orders; DROP TABLE kb_stage_items;"

# Stored order enriched, incoming record not: keep what the API brought (and, for the same
# version of the order, all of it: a report is a thinner view of what the API said).
_REPORT_OVER_API = "(EXCLUDED.enriched_at IS NULL AND o.enriched_at IS NOT NULL)"


def _write_orders_sql(*, stored: bool) -> str:
    """Write staged orders and note in the stage what became of each one: the orders not stored
    yet (``stored=False``: inserted, the rest left alone), or the stored ones the first statement
    left (``stored=True``: merged by the rules above)."""
    merged = (*_REQUIRED_ORDER_COLUMNS, *_OPTIONAL_ORDER_COLUMNS, *_API_KEPT_ORDER_COLUMNS)
    columns = ("external_updated_at", *merged)
    assignments = [f"{name} = EXCLUDED.{name}" for name in _REQUIRED_ORDER_COLUMNS]
    assignments += [
        f"{name} = coalesce(EXCLUDED.{name}, o.{name})" for name in _OPTIONAL_ORDER_COLUMNS
    ]
    assignments += [
        f"{name} = CASE WHEN {_REPORT_OVER_API} THEN o.{name} "
        f"ELSE coalesce(EXCLUDED.{name}, o.{name}) END"
        for name in _API_KEPT_ORDER_COLUMNS
    ]
    changed = [f"EXCLUDED.{name} IS DISTINCT FROM o.{name}" for name in _REQUIRED_ORDER_COLUMNS]
    changed += [
        f"(EXCLUDED.{name} IS NOT NULL AND EXCLUDED.{name} IS DISTINCT FROM o.{name})"
        for name in _OPTIONAL_ORDER_COLUMNS
    ]
    changed += [
        f"(EXCLUDED.{name} IS NOT NULL AND EXCLUDED.{name} IS DISTINCT FROM o.{name} "
        f"AND NOT {_REPORT_OVER_API})"
        for name in _API_KEPT_ORDER_COLUMNS
    ]
    changed.append("(EXCLUDED.enriched_at IS NOT NULL AND o.enriched_at IS NULL)")
    changed.append("EXCLUDED.detail > o.detail")
    only_left = "WHERE s.order_id IS NULL" if stored else ""
    on_conflict = "DO NOTHING"
    if stored:
        on_conflict = f"""DO UPDATE SET
        external_updated_at = EXCLUDED.external_updated_at,
        {", ".join(assignments)},
        enriched_at = coalesce(o.enriched_at, EXCLUDED.enriched_at),
        detail = CASE WHEN EXCLUDED.external_updated_at > o.external_updated_at
                      THEN EXCLUDED.detail ELSE greatest(o.detail, EXCLUDED.detail) END,
        updated_at = now()
    WHERE EXCLUDED.external_updated_at > o.external_updated_at
       OR (EXCLUDED.external_updated_at = o.external_updated_at AND EXCLUDED.detail >= o.detail
           AND ({" OR ".join(changed)}))"""
    # A subquery in RETURNING reads the statement's snapshot: the row as it was before this
    # statement, through its primary key, and only for rows that existed (xmax set by the update).
    before = [f"p.{column}::text" for _, column in _EVENT_COLUMNS]
    before.append("(p.enriched_at IS NOT NULL)::text")
    stage_answers = [
        f"old_{column} = w.old[{number}]" for number, (_, column) in enumerate(_EVENT_COLUMNS, 1)
    ]
    stage_answers += [f"new_{column} = w.{column}" for _, column in _EVENT_COLUMNS]
    was_enriched = f"coalesce(w.old[{len(_EVENT_COLUMNS) + 1}]::boolean, false)"
    return f"""
WITH written AS (
    INSERT INTO orders AS o (
        tenant_id, marketplace, external_order_id, {", ".join(columns)}, enriched_at, detail)
    SELECT %(tenant)s, s.marketplace, s.external_order_id,
           {", ".join(f"s.{name}" for name in columns)},
           CASE WHEN s.enriched THEN now() END, s.detail
    FROM kb_stage_orders s
    {only_left}
    ON CONFLICT (tenant_id, marketplace, external_order_id) {on_conflict}
    RETURNING o.id, o.marketplace, o.external_order_id, o.xmax <> 0 AS replaced,
        o.enriched_at IS NOT NULL AS enriched,
        {", ".join(f"o.{column}::text AS {column}" for _, column in _EVENT_COLUMNS)},
        CASE WHEN o.xmax <> 0 THEN (
            SELECT ARRAY[{", ".join(before)}] FROM orders p
            WHERE p.id = o.id AND p.tenant_id = %(tenant)s
        ) END AS old
)
UPDATE kb_stage_orders s SET
    order_id = w.id,
    replaced = w.replaced,
    became_enriched = w.enriched AND NOT {was_enriched},
    items_apply = s.items_digest IS NOT NULL AND (s.enriched OR NOT {was_enriched}),
    {", ".join(stage_answers)}
FROM written w
WHERE s.marketplace = w.marketplace AND s.external_order_id = w.external_order_id
"""


# The stored orders of the batch, locked in one order before they are merged: the merge's
# snapshot, taken after, then holds the very version it replaces, so the values its RETURNING
# reads as "before" are exact even when another transaction (a refresh beside a sync) changed the
# order a moment earlier. Only orders the insert found stored pay for it.
_LOCK_STORED_ORDERS = """
SELECT count(*) FROM (
    SELECT o.id FROM kb_stage_orders s
    JOIN orders o ON o.tenant_id = %(tenant)s AND o.marketplace = s.marketplace
        AND o.external_order_id = s.external_order_id
    WHERE s.order_id IS NULL
    ORDER BY o.id
    FOR UPDATE OF o
) AS locked
"""
_MERGE_SUMMARY = """
SELECT count(*) FILTER (WHERE replaced),
       count(*) FILTER (WHERE replaced AND items_apply),
       count(*) FILTER (WHERE became_enriched)
FROM kb_stage_orders
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
WHERE s.items_apply
ON CONFLICT (order_id, external_item_id) DO UPDATE SET {", ".join(assignments)}
WHERE {" OR ".join(changed)}
"""


# Only orders that existed before this batch and came with an item list to apply can have lines
# to rename or drop; a first load skips these statements entirely.
_UNNAMED_STORED_LINES = """
SELECT i.id, i.order_id, i.sku, i.asin, i.quantity, row_number() OVER (
           PARTITION BY i.order_id, i.sku, i.asin, i.quantity ORDER BY i.external_item_id) AS n
FROM kb_stage_orders s
JOIN order_items i ON i.order_id = s.order_id AND i.tenant_id = %(tenant)s
WHERE s.replaced AND s.items_apply AND (i.sku IS NOT NULL OR i.asin IS NOT NULL)
  AND NOT EXISTS (
      SELECT 1 FROM kb_stage_items si
      WHERE si.marketplace = s.marketplace AND si.external_order_id = s.external_order_id
        AND si.external_item_id = i.external_item_id)
"""
_UNSTORED_NEW_LINES = """
SELECT s.order_id, si.external_item_id, si.sku, si.asin, si.quantity, si.title, si.unit_price,
       row_number() OVER (
           PARTITION BY s.order_id, si.sku, si.asin, si.quantity ORDER BY si.external_item_id
       ) AS n
FROM kb_stage_orders s
JOIN kb_stage_items si ON si.marketplace = s.marketplace
    AND si.external_order_id = s.external_order_id
WHERE s.replaced AND s.items_apply
  AND NOT EXISTS (
      SELECT 1 FROM order_items i
      WHERE i.order_id = s.order_id AND i.tenant_id = %(tenant)s
        AND i.external_item_id = si.external_item_id)
"""
# The n-th stored line of an (order, SKU, ASIN, quantity) takes the name of the n-th new one,
# and the new line's fields, as the item merge would give them.
_RENAME_MATCHED_LINES = f"""
WITH stale AS ({_UNNAMED_STORED_LINES}), fresh AS ({_UNSTORED_NEW_LINES})
UPDATE order_items i SET
    external_item_id = f.external_item_id,
    title = coalesce(f.title, i.title),
    unit_price = coalesce(f.unit_price, i.unit_price)
FROM stale st
JOIN fresh f ON f.order_id = st.order_id AND f.quantity = st.quantity AND f.n = st.n
    AND f.sku IS NOT DISTINCT FROM st.sku AND f.asin IS NOT DISTINCT FROM st.asin
WHERE i.id = st.id AND i.tenant_id = %(tenant)s
"""
_DELETE_STALE_ITEMS = """
DELETE FROM order_items i
USING kb_stage_orders s
WHERE s.replaced AND s.items_apply
  AND i.order_id = s.order_id AND i.tenant_id = %(tenant)s
  AND NOT EXISTS (
      SELECT 1 FROM kb_stage_items si
      WHERE si.marketplace = s.marketplace AND si.external_order_id = s.external_order_id
        AND si.external_item_id = i.external_item_id)
"""


def _write_events_sql() -> str:
    changes = ",\n        ".join(
        f"('{field.value}'::order_event_field, s.old_{column}, s.new_{column})"
        for field, column in _EVENT_COLUMNS
    )
    return f"""
INSERT INTO order_events (tenant_id, order_id, field, from_value, to_value, source)
SELECT %(tenant)s, s.order_id, c.field, c.from_value, c.to_value, %(source)s::order_event_source
FROM kb_stage_orders s
CROSS JOIN LATERAL (
    VALUES
        {changes}
) AS c (field, from_value, to_value)
WHERE s.order_id IS NOT NULL AND (s.replaced OR %(on_creation)s)
  AND c.from_value IS DISTINCT FROM c.to_value
"""


_INSERT_NEW_ORDERS = _write_orders_sql(stored=False)
_MERGE_STORED_ORDERS = _write_orders_sql(stored=True)
_MERGE_ITEMS = _merge_items_sql()
_WRITE_EVENTS = _write_events_sql()
# Sources whose new orders are news, not history: their first values are events.
_CREATION_IS_AN_EVENT = frozenset({EventSource.SYNC, EventSource.REFRESH})


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


# --- Rows in COPY's text format ------------------------------------------------------------------
# A batch goes to PostgreSQL as one text buffer per table, each row formatted here rather than
# handed value by value to psycopg's ``write_row``: the worker's CPU per order is what limits a
# backfill's import on a small machine. The format (PostgreSQL's ``COPY ... FROM STDIN``
# default): columns separated by tabs, rows ended by a newline, ``\N`` for NULL, and within a
# value a backslash, tab, newline or carriage return written as a backslash escape.

NULL = "\\N"


def copy_text(value: str | None) -> str:
    """A text value (or NULL) as a column of a COPY row."""
    if value is None:
        return NULL
    if "\\" not in value and value.isprintable():
        return value  # nothing to escape: the usual case, checked in C without copying
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


def copy_moment(value: dt.datetime | None) -> str:
    """A ``timestamptz`` (as psycopg writes it: ISO 8601 with a space and the offset)."""
    return NULL if value is None else str(value)


def copy_number(value: Decimal | None) -> str:
    """A ``numeric``: ``Decimal``'s own text, which PostgreSQL reads (a signalling NaN too is
    NaN, as psycopg writes it)."""
    if value is None:
        return NULL
    return "NaN" if value.is_nan() else str(value)


def copy_json(value: dict[str, Any] | None) -> str:
    """A ``jsonb`` value, as psycopg's ``Jsonb`` dumps it (``json.dumps``)."""
    if value is None:
        return NULL
    pairs = tuple(value.items())
    if all(type(text) is str for _, text in pairs):
        return _copy_text_object(pairs)
    return copy_text(json.dumps(value))


@functools.lru_cache(maxsize=4096)
def _copy_text_object(pairs: tuple[tuple[str, str], ...]) -> str:
    """An object of text values: addresses, which a report repeats (city, region, postcode,
    country) and which dump to the same text each time. Only text values come here, so that
    equal keys are the same JSON (1, 1.0 and True are equal keys, and three JSON texts)."""
    return copy_text(json.dumps(dict(pairs)))


def copy_bool(value: bool) -> str:
    return "t" if value else "f"


def copy_rows(rows: Iterable[Sequence[str]]) -> str:
    """Rows of formatted columns as one COPY buffer."""
    return "".join(["\t".join(row) + "\n" for row in rows])


def _order_columns(record: OrderRecord, items: list[ItemRecord]) -> list[str]:
    """The record's columns from ``marketplace`` to ``items_digest`` (``_STAGE_ORDER_COLUMNS``
    but the last two), formatted for COPY."""
    return [
        copy_text(record.marketplace),
        copy_text(record.external_order_id),
        copy_moment(record.external_updated_at),
        copy_text(record.order_ref or record.external_order_id),
        copy_moment(record.order_date),
        record.order_status.value,
        copy_text(record.marketplace_id),
        copy_text(record.customer_name),
        copy_text(record.customer_email),
        copy_text(record.currency),
        copy_number(record.total_amount),
        NULL if record.delivery_status is None else record.delivery_status.value,
        copy_text(record.carrier),
        copy_text(record.tracking_code),
        copy_text(record.fulfillment_channel),
        copy_moment(record.latest_ship_date),
        copy_moment(record.latest_delivery_date),
        copy_moment(record.shipped_at),
        copy_moment(record.delivered_at),
        copy_json(record.shipping_address),
        items_digest(items) if record.items is not None else NULL,
    ]


def _item_columns(item: ItemRecord) -> list[str]:
    """The item's columns from ``external_item_id`` on (``_STAGE_ITEM_COLUMNS``' tail)."""
    return [
        copy_text(item.external_item_id),
        str(item.quantity),
        copy_text(item.sku),
        copy_text(item.asin),
        copy_text(item.title),
        copy_number(item.unit_price),
    ]


async def upsert_orders(
    session: AsyncSession,
    tenant_id: TenantId,
    records: Sequence[OrderRecord],
    *,
    source: EventSource = EventSource.BACKFILL,
    expect_new: bool = False,
) -> UpsertResult:
    """Merge ``records`` into the tenant's orders, in batches, inside the caller's transaction;
    the changes it makes go to the orders' timelines as made by ``source``.

    ``expect_new``: the caller knows of none of these orders stored (a backfill's first import
    of a period): a batch is COPYed straight into the tables, which is what the merge would do
    with it at a fraction of the cost; if one of its orders is stored after all (a sync wrote
    it meanwhile), that batch is merged instead."""
    if source is EventSource.AGENT:
        raise ValueError("marketplace data never comes from an agent")
    unique = latest_per_order(records)
    conn = await raw_connection(session)
    totals = [0, 0, 0, 0]
    copy_new = expect_new and source not in _CREATION_IS_AN_EVENT
    for start in range(0, len(unique), BATCH_SIZE):
        batch = unique[start : start + BATCH_SIZE]
        counts = await _copy_new_batch(conn, tenant_id, batch) if copy_new else None
        if counts is None:
            counts = await _merge_batch(conn, tenant_id, batch, source)
        totals = [total + count for total, count in zip(totals, counts, strict=True)]
    orders_written, items_written, orders_enriched, events_written = totals
    return UpsertResult(
        orders_received=len(records),
        orders_written=orders_written,
        items_written=items_written,
        orders_enriched=orders_enriched,
        events_written=events_written,
    )


async def _merge_batch(
    conn: AsyncConnection[Any],
    tenant_id: TenantId,
    batch: Sequence[OrderRecord],
    source: EventSource,
) -> tuple[int, int, int, int]:
    """Merge one batch; how many orders, items and events it wrote, and orders it enriched."""
    on_creation = source in _CREATION_IS_AN_EVENT
    params = {"tenant": tenant_id, "source": source.value, "on_creation": on_creation}
    async with conn.cursor() as cur:
        await cur.execute(_CREATE_STAGE)
        await _copy_batch(cur, batch)
        await cur.execute(_ANALYZE_STAGE)
        await cur.execute(_INSERT_NEW_ORDERS, params)
        orders_written = cur.rowcount
        if orders_written < len(batch):
            await cur.execute(_LOCK_STORED_ORDERS, params)
            await cur.execute(_MERGE_STORED_ORDERS, params)
            orders_written += cur.rowcount
        await cur.execute(_MERGE_SUMMARY)
        summary = await cur.fetchone()
        assert summary is not None
        replaced, replaced_with_items, orders_enriched = summary
        items_written = 0
        if replaced_with_items:
            await cur.execute(_ANALYZE_ANSWERS)
            await cur.execute(_RENAME_MATCHED_LINES, params)
            items_written += cur.rowcount
        await cur.execute(_MERGE_ITEMS, params)
        items_written += cur.rowcount
        if replaced_with_items:
            await cur.execute(_DELETE_STALE_ITEMS, params)
        events_written = 0
        if replaced or (on_creation and orders_written):
            await cur.execute(_WRITE_EVENTS, params)
            events_written = cur.rowcount
        await cur.execute(_DROP_STAGE)
    return orders_written, items_written, orders_enriched, events_written


_NEW_ORDER_COLUMNS = ("id", "tenant_id", *_STAGE_ORDER_COLUMNS[:-2], "enriched_at", "detail")
_NEW_ITEM_COLUMNS = ("tenant_id", "order_id", *_STAGE_ITEM_COLUMNS[2:])


# COPY into a table under row-level security is refused (the app's role is): a batch is COPYed
# into empty copies of the columns it fills, then inserted in one statement, each row checked
# by the policy. (WITH NO DATA reads nothing; the condition only names no tenant.)
_CREATE_NEW = f"""
CREATE TEMP TABLE kb_new_orders ON COMMIT DROP AS
    SELECT {", ".join(_NEW_ORDER_COLUMNS)} FROM orders WHERE tenant_id = '' WITH NO DATA;
CREATE TEMP TABLE kb_new_items ON COMMIT DROP AS
    SELECT {", ".join(_NEW_ITEM_COLUMNS)} FROM order_items WHERE tenant_id = '' WITH NO DATA;
"""
_DROP_NEW = "DROP TABLE kb_new_orders, kb_new_items"


async def _copy_new_batch(
    conn: AsyncConnection[Any], tenant_id: TenantId, batch: Sequence[OrderRecord]
) -> tuple[int, int, int, int] | None:
    """COPY a batch of orders none of which is stored, with their items, in a savepoint;
    ``None`` (and nothing written) when one of them was stored after all."""
    item_lists = [_unique_items(record) for record in batch]
    ids = uuid7_hexes(len(batch))
    async with conn.cursor() as cur:
        # An explicit savepoint: psycopg's own would commit the caller's transaction when it
        # holds no statement yet.
        await cur.execute("SAVEPOINT kb_copy_new")
        try:
            await cur.execute(_CREATE_NEW)
            tenant = copy_text(tenant_id)
            stamp = copy_moment(dt.datetime.now(dt.UTC))
            columns = ", ".join(_NEW_ORDER_COLUMNS)
            async with cur.copy(f"COPY kb_new_orders ({columns}) FROM STDIN") as copy:
                await copy.write(
                    copy_rows(
                        [
                            order_id,
                            tenant,
                            *_order_columns(record, items),
                            stamp if record.enriched else NULL,
                            str(int(record.detail)),
                        ]
                        for order_id, record, items in zip(ids, batch, item_lists, strict=True)
                    )
                )
            await cur.execute(f"INSERT INTO orders ({columns}) SELECT {columns} FROM kb_new_orders")
            columns = ", ".join(_NEW_ITEM_COLUMNS)
            async with cur.copy(f"COPY kb_new_items ({columns}) FROM STDIN") as copy:
                await copy.write(
                    copy_rows(
                        [tenant, order_id, *_item_columns(item)]
                        for order_id, items in zip(ids, item_lists, strict=True)
                        for item in items
                    )
                )
            await cur.execute(
                f"INSERT INTO order_items ({columns}) SELECT {columns} FROM kb_new_items"
            )
            await cur.execute(_DROP_NEW)
        except UniqueViolation:
            await cur.execute("ROLLBACK TO SAVEPOINT kb_copy_new")
            return None
        await cur.execute("RELEASE SAVEPOINT kb_copy_new")
    enriched = sum(record.enriched for record in batch)
    return len(batch), sum(map(len, item_lists)), enriched, 0


async def _copy_batch(cur: Any, batch: Sequence[OrderRecord]) -> None:
    item_lists = [_unique_items(record) for record in batch]
    columns = ", ".join(_STAGE_ORDER_COLUMNS)
    async with cur.copy(f"COPY kb_stage_orders ({columns}) FROM STDIN") as copy:
        await copy.write(
            copy_rows(
                [
                    *_order_columns(record, items),
                    copy_bool(record.enriched),
                    str(int(record.detail)),
                ]
                for record, items in zip(batch, item_lists, strict=True)
            )
        )
    columns = ", ".join(_STAGE_ITEM_COLUMNS)
    async with cur.copy(f"COPY kb_stage_items ({columns}) FROM STDIN") as copy:
        await copy.write(
            copy_rows(
                [copy_text(record.marketplace), copy_text(record.external_order_id), *columns]
                for record, items in zip(batch, item_lists, strict=True)
                for columns in map(_item_columns, items)
            )
        )

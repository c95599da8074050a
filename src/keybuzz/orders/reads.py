"""The read path of the Orders API: the order list, one order and its timeline, answered with the
JSON PostgreSQL builds, sent as it comes (``keybuzz.reads`` sends each request's transaction in
one round trip).

The JSON is the one ``OrderPage``, ``OrderRead`` and ``OrderEventList`` document (the routes
keep them as their response models): camelCase keys in the models' order, amounts as exact
strings (``numeric::text``), times in UTC with a ``Z``, microseconds only when there are some
(``2026-01-31T12:34:56Z``, ``2026-01-31T12:34:56.120000Z``), as Pydantic writes them. The tests
compare every field with what the models made of the same rows.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from keybuzz.db import TENANT_SETTING
from keybuzz.errors import InvalidInput
from keybuzz.orders.records import AT_RISK_WINDOW, TO_SHIP_STATUSES, SlaStatus
from keybuzz.orders.repository import OrderQuery
from keybuzz.orders.service import OrderNotFound, build_query, encode_cursor
from keybuzz.reads import Reads, Sql
from keybuzz.tenants.models import TenantId
from keybuzz.tenants.service import Credentials, checked_tenant, credential_check


def _time(column: str) -> str:
    """A timestamptz as Pydantic writes an aware UTC datetime."""
    return (
        f"replace(to_char({column} AT TIME ZONE 'UTC', "
        f"'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), '.000000Z', 'Z')"
    )


def _object(fields: list[tuple[str, str]]) -> str:
    return "json_build_object(" + ", ".join(f"'{key}', {value}" for key, value in fields) + ")"


_TO_SHIP = (
    "o.order_status IN ("
    + ", ".join(f"'{status.value}'" for status in TO_SHIP_STATUSES)
    + ") AND o.latest_ship_date IS NOT NULL"
)
_AT_RISK_SECONDS = int(AT_RISK_WINDOW.total_seconds())
# The SLA rule (SlaStatus), as of now: the same conditions as the list's sla_status filter.
SLA_CONDITIONS: dict[SlaStatus, str] = {
    SlaStatus.BREACHED: f"({_TO_SHIP} AND o.latest_ship_date < now())",
    SlaStatus.AT_RISK: (
        f"({_TO_SHIP} AND o.latest_ship_date >= now()"
        f" AND o.latest_ship_date < now() + make_interval(secs => {_AT_RISK_SECONDS}))"
    ),
}
SLA_CONDITIONS[SlaStatus.OK] = (
    f"NOT coalesce({SLA_CONDITIONS[SlaStatus.BREACHED]} OR {SLA_CONDITIONS[SlaStatus.AT_RISK]},"
    " false)"
)
_SLA_STATUS = (
    f"CASE WHEN {SLA_CONDITIONS[SlaStatus.BREACHED]} THEN '{SlaStatus.BREACHED.value}'"
    f" WHEN {SLA_CONDITIONS[SlaStatus.AT_RISK]} THEN '{SlaStatus.AT_RISK.value}'"
    f" ELSE '{SlaStatus.OK.value}' END"
)

_ITEMS = (
    "(SELECT coalesce(json_agg("
    + _object(
        [
            ("id", "i.id"),
            ("externalItemId", "i.external_item_id"),
            ("sku", "i.sku"),
            ("asin", "i.asin"),
            ("title", "i.title"),
            ("quantity", "i.quantity"),
            ("unitPrice", "i.unit_price::text"),
        ]
    )
    + " ORDER BY i.external_item_id), '[]')"
    " FROM order_items i WHERE i.order_id = o.id AND i.tenant_id = o.tenant_id)"
)

ORDER_JSON = _object(
    [
        ("id", "o.id"),
        ("marketplace", "o.marketplace"),
        ("marketplaceId", "o.marketplace_id"),
        ("externalOrderId", "o.external_order_id"),
        ("orderRef", "o.order_ref"),
        ("customerName", "o.customer_name"),
        ("customerEmail", "o.customer_email"),
        ("orderDate", _time("o.order_date")),
        ("currency", "o.currency"),
        ("totalAmount", "o.total_amount::text"),
        ("orderStatus", "o.order_status"),
        ("deliveryStatus", "o.delivery_status"),
        ("savStatus", "o.sav_status"),
        ("slaStatus", _SLA_STATUS),
        ("carrier", "o.carrier"),
        ("trackingCode", "o.tracking_code"),
        ("shippingAddress", "o.shipping_address"),
        ("fulfillmentChannel", "o.fulfillment_channel"),
        ("latestShipDate", _time("o.latest_ship_date")),
        ("latestDeliveryDate", _time("o.latest_delivery_date")),
        ("externalUpdatedAt", _time("o.external_updated_at")),
        ("shippedAt", _time("o.shipped_at")),
        ("deliveredAt", _time("o.delivered_at")),
        ("enrichedAt", _time("o.enriched_at")),
        ("createdAt", _time("o.created_at")),
        ("updatedAt", _time("o.updated_at")),
        ("items", _ITEMS),
    ]
)
"""One order as ``OrderRead`` writes it, over ``orders o``."""

_EVENT_JSON = _object(
    [
        ("occurredAt", _time("e.occurred_at")),
        ("field", "e.field"),
        ("from", "e.from_value"),
        ("to", "e.to_value"),
        ("source", "e.source"),
    ]
)

# Nothing is computed unless the credential's check set this transaction's tenant to the one
# read (a one-time filter: PostgreSQL evaluates it once, before reading any row).
_CHECKED = f"current_setting('{TENANT_SETTING}', true) = %(tenant)s"


def list_sql(tenant_id: str, query: OrderQuery) -> Sql:
    """The list's one statement: each row an order's JSON, its sort value and id; ``limit + 1``
    rows tell whether another page follows."""
    column = "o." + query.sort.column.key
    params: dict[str, Any] = {"tenant": tenant_id, "fetch": query.limit + 1}
    conditions = ["o.tenant_id = %(tenant)s", _CHECKED]
    for name, values in (
        ("marketplace", query.marketplace),
        ("order_status", query.order_status),
        ("delivery_status", query.delivery_status),
        ("sav_status", query.sav_status),
    ):
        if values:
            params[name] = [str(value) for value in values]
            # The parameter (text[]) takes the column's enum type: the indexes still serve.
            cast = "" if name == "marketplace" else f"::{name}[]"
            conditions.append(f"o.{name} = ANY(%({name})s{cast})")
    if query.sla_status:
        conditions.append(
            "(" + " OR ".join(SLA_CONDITIONS[status] for status in query.sla_status) + ")"
        )
    if query.date_from is not None:
        params["date_from"] = query.date_from
        conditions.append("o.order_date >= %(date_from)s")
    if query.date_to is not None:
        params["date_to"] = query.date_to
        conditions.append("o.order_date < %(date_to)s")
    if query.q:
        pattern = query.q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params["contains"] = f"%{pattern}%"
        params["prefix"] = f"{pattern}%"
        # With the owner's rights, on this transaction's tenant (migration 0011): under
        # row-level security, LIKE could not use the trigram index.
        conditions.append("o.id IN (SELECT keybuzz_orders_matching(%(contains)s, %(prefix)s))")
    direction = "DESC" if query.sort.descending else "ASC"
    if query.after is not None:
        params["after_value"], params["after_id"] = query.after
        operator = "<" if query.sort.descending else ">"
        conditions.append(f"({column}, o.id) {operator} (%(after_value)s, %(after_id)s)")
    text = (
        f"SELECT {ORDER_JSON}, {column}, o.id FROM orders o"
        f" WHERE {' AND '.join(conditions)}"
        f" ORDER BY {column} {direction}, o.id {direction} LIMIT %(fetch)s"
    )
    return Sql(text, params)


def order_sql(tenant_id: str, order_id: uuid.UUID) -> Sql:
    text = (
        f"SELECT {ORDER_JSON} FROM orders o"
        f" WHERE o.tenant_id = %(tenant)s AND o.id = %(order)s AND {_CHECKED}"
    )
    return Sql(text, {"tenant": tenant_id, "order": order_id})


def events_sql(tenant_id: str, order_id: uuid.UUID) -> Sql:
    """Whether the order exists, and its timeline, oldest first."""
    text = (
        "SELECT EXISTS (SELECT FROM orders o"
        f" WHERE o.tenant_id = %(tenant)s AND o.id = %(order)s AND {_CHECKED}),"
        f" (SELECT coalesce(json_agg({_EVENT_JSON} ORDER BY e.occurred_at, e.id), '[]')"
        " FROM order_events e"
        f" WHERE e.tenant_id = %(tenant)s AND e.order_id = %(order)s AND {_CHECKED})"
    )
    return Sql(text, {"tenant": tenant_id, "order": order_id})


Admit = Callable[[TenantId], Awaitable[None]]
"""Lets a request through once its tenant is known (the rate limits' tokens), or raises."""


async def _admit_all(tenant: TenantId) -> None:
    return None


async def _checked(
    reads: Reads, credentials: Credentials, query: Any, admit: Admit = _admit_all
) -> tuple[TenantId, list[tuple[Any, ...]]]:
    check, params = credential_check(credentials)
    found, rows = await reads.run(Sql(check, params), query, credentials.tenant_header)
    tenant = checked_tenant(credentials, found)
    await admit(tenant)
    return tenant, rows


async def list_orders_json(
    reads: Reads, credentials: Credentials, params: Any, admit: Admit = _admit_all
) -> bytes:
    """The ``OrderPage`` of ``params`` (``OrderListParams``), as JSON."""
    try:
        query = build_query(params)
    except InvalidInput:
        await _checked(reads, credentials, None)  # a refused credential answers first
        raise
    _, rows = await _checked(reads, credentials, lambda tenant: list_sql(tenant, query), admit)
    page = rows[: query.limit]
    next_cursor = b"null"
    if len(rows) > query.limit:
        _, value, order_id = page[-1]
        next_cursor = json.dumps(encode_cursor(query.sort, value, order_id)).encode()
    documents = b",".join(row[0] for row in page)
    return b'{"items":[' + documents + b'],"nextCursor":' + next_cursor + b"}"


async def order_json(
    reads: Reads, credentials: Credentials, order_id: uuid.UUID, admit: Admit = _admit_all
) -> bytes:
    """The ``OrderRead`` of one order, as JSON."""
    query = lambda tenant: order_sql(tenant, order_id)  # noqa: E731
    _, rows = await _checked(reads, credentials, query, admit)
    if not rows:
        raise OrderNotFound(f"No order {order_id} for this tenant.")
    document: bytes = rows[0][0]
    return document


async def order_events_json(
    reads: Reads, credentials: Credentials, order_id: uuid.UUID, admit: Admit = _admit_all
) -> bytes:
    """The ``OrderEventList`` of one order, as JSON."""
    query = lambda tenant: events_sql(tenant, order_id)  # noqa: E731
    _, rows = await _checked(reads, credentials, query, admit)
    exists, events = rows[0]
    if not exists:
        raise OrderNotFound(f"No order {order_id} for this tenant.")
    body: bytes = b'{"items":' + events + b"}"
    return body

"""Use cases on a tenant's orders: list and search, read one, its timeline, helpdesk updates,
purge, upsert, and the list of quarantined orders."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.errors import BadRequest, InvalidInput, NotFound
from keybuzz.orders import repository, upsert
from keybuzz.orders.models import EventSource
from keybuzz.orders.records import OrderRecord
from keybuzz.orders.repository import (
    QUARANTINE_SORT,
    SORTS,
    OrderQuery,
    QuarantineQuery,
    SortKey,
)
from keybuzz.orders.schemas import (
    OrderListParams,
    OrderPatch,
    OrderRead,
    PurgeResult,
    QuarantinedOrderRead,
    QuarantineListParams,
    QuarantinePage,
)
from keybuzz.orders.upsert import UpsertResult
from keybuzz.tenants.models import TenantId

MIN_SEARCH_LENGTH = 3


class OrderNotFound(NotFound):
    code = "order_not_found"
    title = "Order not found"


class PurgeNotConfirmed(BadRequest):
    code = "purge_not_confirmed"
    title = "Purge not confirmed"


def encode_cursor(sort: SortKey, value: dt.datetime, order_id: uuid.UUID) -> str:
    payload = json.dumps([sort.name, value.isoformat(), str(order_id)], separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: SortKey) -> tuple[dt.datetime, uuid.UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        name, value, order_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        position = (dt.datetime.fromisoformat(value), uuid.UUID(order_id))
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("cursor", "not a cursor this API returned") from None
    if position[0].tzinfo is None:
        raise InvalidInput("cursor", "not a cursor this API returned")
    if name != sort.name:
        raise InvalidInput("cursor", f"this cursor belongs to sort={name}, not sort={sort.name}")
    return position


def build_query(params: OrderListParams) -> OrderQuery:
    """Validate list parameters into a query; every error names its parameter."""
    date_from, date_to = params.date_from, params.date_to
    sort_key = SORTS[params.sort]
    for name, moment in (("from", date_from), ("to", date_to)):
        if moment is not None and moment.tzinfo is None:
            raise InvalidInput(name, "give a time zone, e.g. 2026-01-31T00:00:00Z")
    if date_from is not None and date_to is not None and date_from > date_to:
        raise InvalidInput("from", "must not be after `to`")
    search = params.q.strip(" ") if params.q is not None else None
    if search is not None and len(search) < MIN_SEARCH_LENGTH:
        raise InvalidInput("q", f"search at least {MIN_SEARCH_LENGTH} characters")
    return OrderQuery(
        marketplace=tuple(params.marketplace),
        order_status=tuple(params.order_status),
        delivery_status=tuple(params.delivery_status),
        sav_status=tuple(params.sav_status),
        sla_status=tuple(params.sla_status),
        date_from=date_from,
        date_to=date_to,
        q=search or None,
        sort=sort_key,
        limit=params.limit,
        after=decode_cursor(params.cursor, sort_key) if params.cursor else None,
    )


async def get_order(session: AsyncSession, tenant_id: TenantId, order_id: uuid.UUID) -> OrderRead:
    order = await repository.get_order(session, tenant_id, order_id)
    if order is None:
        raise OrderNotFound(f"No order {order_id} for this tenant.")
    return OrderRead.model_validate(order)


async def update_order(
    session: AsyncSession, tenant_id: TenantId, order_id: uuid.UUID, patch: OrderPatch
) -> OrderRead:
    if not await repository.set_sav_status(session, tenant_id, order_id, patch.sav_status):
        raise OrderNotFound(f"No order {order_id} for this tenant.")
    return await get_order(session, tenant_id, order_id)


async def count_orders(
    session: AsyncSession, tenant_id: TenantId, marketplace: str | None = None
) -> int:
    return await repository.count_orders(session, tenant_id, marketplace)


async def purge_orders(
    session: AsyncSession, tenant_id: TenantId, *, marketplace: str | None, confirm: bool
) -> PurgeResult:
    """Delete the tenant's orders (of one marketplace, or all), only when confirmed."""
    if not confirm:
        count = await repository.count_orders(session, tenant_id, marketplace)
        scope = f"{marketplace} orders" if marketplace else "orders"
        raise PurgeNotConfirmed(
            f"This deletes {count} {scope} and their items for good; repeat with confirm=true."
        )
    deleted = await repository.delete_orders(session, tenant_id, marketplace)
    return PurgeResult(deleted_orders=deleted, marketplace=marketplace)


async def upsert_orders(
    session: AsyncSession,
    tenant_id: TenantId,
    records: Sequence[OrderRecord],
    *,
    source: EventSource = EventSource.BACKFILL,
    expect_new: bool = False,
) -> UpsertResult:
    return await upsert.upsert_orders(
        session, tenant_id, records, source=source, expect_new=expect_new
    )


async def list_quarantine(
    session: AsyncSession, tenant_id: TenantId, params: QuarantineListParams
) -> QuarantinePage:
    query = QuarantineQuery(
        backfill_job_id=params.backfill_job_id,
        limit=params.limit,
        after=decode_cursor(params.cursor, QUARANTINE_SORT) if params.cursor else None,
    )
    rows, has_more = await repository.list_quarantine(session, tenant_id, query)
    next_cursor = None
    if has_more:
        next_cursor = encode_cursor(QUARANTINE_SORT, rows[-1].created_at, rows[-1].id)
    return QuarantinePage(
        items=[QuarantinedOrderRead.model_validate(row) for row in rows], next_cursor=next_cursor
    )

"""The read path as it was before it answered with PostgreSQL's JSON (main at d9018aa, issue 11):
the list, one order and its timeline through SQLAlchemy and the Pydantic models, kept verbatim as
the reference the golden tests compare the new answers with. Not to be changed."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, Select, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.orders import repository
from keybuzz.orders.models import Order, OrderEvent, OrderItem
from keybuzz.orders.repository import ORDER_COLUMNS, SLA_CONDITIONS, OrderQuery
from keybuzz.orders.schemas import (
    OrderEventList,
    OrderEventRead,
    OrderListParams,
    OrderPage,
    OrderRead,
)
from keybuzz.orders.service import OrderNotFound, build_query, encode_cursor
from keybuzz.tenants.models import TenantId


def _like_pattern(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped


def _search_condition(tenant_id: TenantId, q: str) -> ColumnElement[bool]:
    pattern = _like_pattern(q)
    by_text = select(Order.id).where(
        Order.tenant_id == tenant_id, Order.search_text.like(f"%{pattern}%")
    )
    by_sku = select(OrderItem.order_id).where(
        OrderItem.tenant_id == tenant_id, func.lower(OrderItem.sku).like(f"{pattern}%")
    )
    return Order.id.in_(by_text.union(by_sku))


def list_statement(tenant_id: TenantId, query: OrderQuery) -> Select[Any]:
    sort = query.sort
    statement = select(*ORDER_COLUMNS).where(Order.tenant_id == tenant_id)
    filters: list[ColumnElement[bool]] = []
    if query.marketplace:
        filters.append(Order.marketplace.in_(query.marketplace))
    if query.order_status:
        filters.append(Order.order_status.in_(query.order_status))
    if query.delivery_status:
        filters.append(Order.delivery_status.in_(query.delivery_status))
    if query.sav_status:
        filters.append(Order.sav_status.in_(query.sav_status))
    if query.sla_status:
        filters.append(or_(*(SLA_CONDITIONS[status] for status in query.sla_status)))
    if query.date_from is not None:
        filters.append(Order.order_date >= query.date_from)
    if query.date_to is not None:
        filters.append(Order.order_date < query.date_to)
    if query.q:
        filters.append(_search_condition(tenant_id, query.q))
    if query.after is not None:
        position = tuple_(sort.column, Order.id)
        filters.append(position < query.after if sort.descending else position > query.after)
    order_by = (sort.column.desc(), Order.id.desc()) if sort.descending else (sort.column, Order.id)
    return statement.where(*filters).order_by(*order_by).limit(query.limit + 1)


async def repository_list_orders(
    session: AsyncSession, tenant_id: TenantId, query: OrderQuery
) -> tuple[list[dict[str, Any]], bool]:
    """A page of orders (each with its items), and whether another page follows."""
    connection = await session.connection()
    result = await connection.execute(list_statement(tenant_id, query))
    rows = [row._asdict() for row in result]
    return rows[: query.limit], len(rows) > query.limit


async def order_exists(session: AsyncSession, tenant_id: TenantId, order_id: uuid.UUID) -> bool:
    statement = select(Order.id).where(Order.tenant_id == tenant_id, Order.id == order_id)
    return await session.scalar(statement) is not None


async def list_events(
    session: AsyncSession, tenant_id: TenantId, order_id: uuid.UUID
) -> list[OrderEvent]:
    """An order's timeline, oldest first."""
    result = await session.scalars(
        select(OrderEvent)
        .where(OrderEvent.tenant_id == tenant_id, OrderEvent.order_id == order_id)
        .order_by(OrderEvent.occurred_at, OrderEvent.id)
    )
    return list(result)


async def list_orders(
    session: AsyncSession, tenant_id: TenantId, params: OrderListParams
) -> OrderPage:
    query = build_query(params)
    orders, has_more = await repository_list_orders(session, tenant_id, query)
    next_cursor = None
    if has_more:
        last = orders[-1]
        next_cursor = encode_cursor(query.sort, last[query.sort.column.key], last["id"])
    return OrderPage(items=[OrderRead.model_validate(o) for o in orders], next_cursor=next_cursor)


async def get_order(session: AsyncSession, tenant_id: TenantId, order_id: uuid.UUID) -> OrderRead:
    order = await repository.get_order(session, tenant_id, order_id)
    if order is None:
        raise OrderNotFound(f"No order {order_id} for this tenant.")
    return OrderRead.model_validate(order)


async def list_order_events(
    session: AsyncSession, tenant_id: TenantId, order_id: uuid.UUID
) -> OrderEventList:
    if not await order_exists(session, tenant_id, order_id):
        raise OrderNotFound(f"No order {order_id} for this tenant.")
    events = await list_events(session, tenant_id, order_id)
    return OrderEventList(items=[OrderEventRead.model_validate(event) for event in events])

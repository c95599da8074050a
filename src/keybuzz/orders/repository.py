"""Read queries on a tenant's orders. Every function takes the ``TenantId`` it is scoped to."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Text,
    and_,
    case,
    cast,
    delete,
    func,
    literal_column,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.orders.models import (
    SLA_DONE_STATUSES,
    DeliveryStatus,
    Order,
    OrderItem,
    OrderStatus,
    SavStatus,
    SlaStatus,
)
from keybuzz.tenants.models import TenantId

AT_RISK_WINDOW = dt.timedelta(hours=24)
_OPEN_STATUSES = [s for s in OrderStatus if s not in SLA_DONE_STATUSES]


@dataclass(frozen=True, slots=True)
class SortKey:
    name: str
    column: Any
    descending: bool


SORTS: dict[str, SortKey] = {
    "-orderDate": SortKey("-orderDate", Order.order_date, True),
    "orderDate": SortKey("orderDate", Order.order_date, False),
    "-updatedAt": SortKey("-updatedAt", Order.updated_at, True),
    "updatedAt": SortKey("updatedAt", Order.updated_at, False),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderQuery:
    marketplace: Sequence[str] = ()
    order_status: Sequence[OrderStatus] = ()
    delivery_status: Sequence[DeliveryStatus] = ()
    sav_status: Sequence[SavStatus] = ()
    sla_status: Sequence[SlaStatus] = ()
    date_from: dt.datetime | None = None
    date_to: dt.datetime | None = None
    q: str | None = None
    sort: SortKey = SORTS["-orderDate"]
    limit: int = 50
    after: tuple[dt.datetime, uuid.UUID] | None = None


def sla_status_expression() -> ColumnElement[str]:
    """SLA as of now: open orders past their ship-by date are breached, within 24 h at risk."""
    return case(
        (
            or_(Order.order_status.in_(SLA_DONE_STATUSES), Order.latest_ship_date.is_(None)),
            SlaStatus.OK.value,
        ),
        (Order.latest_ship_date < func.now(), SlaStatus.BREACHED.value),
        (Order.latest_ship_date < func.now() + AT_RISK_WINDOW, SlaStatus.AT_RISK.value),
        else_=SlaStatus.OK.value,
    )


def _sla_condition(status: SlaStatus) -> ColumnElement[bool]:
    is_open = and_(Order.order_status.in_(_OPEN_STATUSES), Order.latest_ship_date.is_not(None))
    if status is SlaStatus.BREACHED:
        return and_(is_open, Order.latest_ship_date < func.now())
    if status is SlaStatus.AT_RISK:
        return and_(
            is_open,
            Order.latest_ship_date >= func.now(),
            Order.latest_ship_date < func.now() + AT_RISK_WINDOW,
        )
    return or_(
        Order.order_status.in_(SLA_DONE_STATUSES),
        Order.latest_ship_date.is_(None),
        Order.latest_ship_date >= func.now() + AT_RISK_WINDOW,
    )


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


_INTERNAL_COLUMNS = {"search_text", "items_digest", "sla_status"}

# Items travel inside the order row as JSON (one round trip per page); prices as text, exactly.
_ITEMS_JSON = (
    select(
        func.coalesce(
            func.json_agg(
                aggregate_order_by(
                    func.json_build_object(
                        "id", OrderItem.id,
                        "external_item_id", OrderItem.external_item_id,
                        "sku", OrderItem.sku,
                        "asin", OrderItem.asin,
                        "title", OrderItem.title,
                        "quantity", OrderItem.quantity,
                        "unit_price", cast(OrderItem.unit_price, Text),
                    ),
                    OrderItem.external_item_id,
                )
            ),
            literal_column("'[]'::json"),
        )
    )
    .where(OrderItem.order_id == Order.id, OrderItem.tenant_id == Order.tenant_id)
    .scalar_subquery()
    .label("items")
)  # fmt: skip

ORDER_COLUMNS: tuple[Any, ...] = (
    *(column for column in Order.__table__.c if column.name not in _INTERNAL_COLUMNS),
    sla_status_expression().label("sla_status"),
    _ITEMS_JSON,
)


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
        filters.append(or_(*(_sla_condition(status) for status in query.sla_status)))
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


async def list_orders(
    session: AsyncSession, tenant_id: TenantId, query: OrderQuery
) -> tuple[list[dict[str, Any]], bool]:
    """A page of orders (each with its items), and whether another page follows."""
    connection = await session.connection()
    result = await connection.execute(list_statement(tenant_id, query))
    rows = [row._asdict() for row in result]
    return rows[: query.limit], len(rows) > query.limit


async def get_order(
    session: AsyncSession, tenant_id: TenantId, order_id: uuid.UUID
) -> dict[str, Any] | None:
    statement = select(*ORDER_COLUMNS).where(Order.tenant_id == tenant_id, Order.id == order_id)
    connection = await session.connection()
    row = (await connection.execute(statement)).one_or_none()
    return row._asdict() if row is not None else None


async def set_sav_status(
    session: AsyncSession, tenant_id: TenantId, order_id: uuid.UUID, sav_status: SavStatus
) -> bool:
    result = await session.execute(
        update(Order)
        .where(Order.tenant_id == tenant_id, Order.id == order_id)
        .values(sav_status=sav_status)
        .returning(Order.id)
    )
    return result.scalar_one_or_none() is not None


async def count_orders(
    session: AsyncSession, tenant_id: TenantId, marketplace: str | None = None
) -> int:
    statement = select(func.count()).select_from(Order).where(Order.tenant_id == tenant_id)
    if marketplace is not None:
        statement = statement.where(Order.marketplace == marketplace)
    return int(await session.scalar(statement) or 0)


async def delete_orders(
    session: AsyncSession, tenant_id: TenantId, marketplace: str | None = None
) -> int:
    statement = delete(Order).where(Order.tenant_id == tenant_id)
    if marketplace is not None:
        statement = statement.where(Order.marketplace == marketplace)
    result = await session.execute(statement)
    return int(result.rowcount)  # type: ignore[attr-defined]

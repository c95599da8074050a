"""Queries on a tenant's orders, their timelines and quarantined orders (the bulk write path is
``keybuzz.orders.upsert``). Every function takes the ``TenantId`` it is scoped to."""

from __future__ import annotations

import datetime as dt
import logging
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Text,
    and_,
    case,
    cast,
    delete,
    func,
    insert,
    literal_column,
    not_,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.orders.models import (
    EventField,
    EventSource,
    Order,
    OrderEvent,
    OrderItem,
    QuarantinedOrder,
)
from keybuzz.orders.records import (
    AT_RISK_WINDOW,
    TO_SHIP_STATUSES,
    DeliveryStatus,
    OrderStatus,
    RejectedOrder,
    SavStatus,
    SlaStatus,
)
from keybuzz.tenants.models import TenantId

logger = logging.getLogger(__name__)


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


def _sla_conditions() -> dict[SlaStatus, ColumnElement[bool]]:
    """The SLA rule (``SlaStatus``), once, as SQL: each status's condition, as of now."""
    to_ship = and_(Order.order_status.in_(TO_SHIP_STATUSES), Order.latest_ship_date.is_not(None))
    breached = and_(to_ship, Order.latest_ship_date < func.now())
    at_risk = and_(
        to_ship,
        Order.latest_ship_date >= func.now(),
        Order.latest_ship_date < func.now() + AT_RISK_WINDOW,
    )
    return {
        SlaStatus.BREACHED: breached,
        SlaStatus.AT_RISK: at_risk,
        SlaStatus.OK: not_(or_(breached, at_risk)),
    }


SLA_CONDITIONS = _sla_conditions()
SLA_STATUS = case(
    (SLA_CONDITIONS[SlaStatus.BREACHED], SlaStatus.BREACHED.value),
    (SLA_CONDITIONS[SlaStatus.AT_RISK], SlaStatus.AT_RISK.value),
    else_=SlaStatus.OK.value,
).label("sla_status")


_INTERNAL_COLUMNS = {"search_text", "items_digest"}

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
    SLA_STATUS,
    _ITEMS_JSON,
)


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
    """Set an order's ``sav_status`` and append the change to its timeline as the agent's;
    ``False`` when the tenant has no such order. The value it already has changes nothing."""
    current = await session.scalar(
        select(Order.sav_status)
        .where(Order.tenant_id == tenant_id, Order.id == order_id)
        .with_for_update()
    )
    if current is None:
        return False
    if current == sav_status:
        return True
    await session.execute(
        update(Order)
        .where(Order.tenant_id == tenant_id, Order.id == order_id)
        .values(sav_status=sav_status)
    )
    await session.execute(
        insert(OrderEvent).values(
            tenant_id=tenant_id,
            order_id=order_id,
            field=EventField.SAV_STATUS,
            from_value=current.value,
            to_value=sav_status.value,
            source=EventSource.AGENT,
        )
    )
    return True


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


# --- Quarantine -------------------------------------------------------------------------------

QUARANTINE_SORT = SortKey("-createdAt", QuarantinedOrder.created_at, True)


@dataclass(frozen=True, slots=True, kw_only=True)
class QuarantineQuery:
    backfill_job_id: uuid.UUID | None = None
    limit: int = 50
    after: tuple[dt.datetime, uuid.UUID] | None = None


async def quarantine_orders(
    session: AsyncSession,
    tenant_id: TenantId,
    rejected: Sequence[RejectedOrder],
    *,
    backfill_job_id: uuid.UUID | None = None,
) -> int:
    """Keep aside orders that could not be stored, each with its payload as received; return
    how many were kept. The payload may hold buyer data: it stays in the tenant's rows and is
    never logged (a log line names the order and the reason only)."""
    if not rejected:
        return 0
    rows = [
        {
            "tenant_id": tenant_id,
            "marketplace": order.marketplace,
            "source": order.source,
            "external_order_id": _storable(order.external_order_id),
            "reason": _storable(order.reason),
            "payload": _storable(order.payload),
            "backfill_job_id": backfill_job_id,
        }
        for order in rejected
    ]
    await session.execute(insert(QuarantinedOrder), rows)
    for order in rejected:
        logger.warning(
            "tenant %s: order %s quarantined: %s",
            tenant_id,
            order.external_order_id or "(no id)",
            order.reason,
        )
    return len(rows)


def _storable(value: Any) -> Any:
    """``value`` as JSON PostgreSQL accepts, so that whatever was received can be kept: NUL
    characters (refused by ``text`` and ``jsonb``) become U+FFFD, non-finite floats and other
    types (dates, decimals) their text."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_storable(str(key)): _storable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_storable(item) for item in value]
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    isoformat = getattr(value, "isoformat", None)
    return _storable(isoformat() if callable(isoformat) else str(value))


async def list_quarantine(
    session: AsyncSession, tenant_id: TenantId, query: QuarantineQuery
) -> tuple[list[QuarantinedOrder], bool]:
    """A page of quarantined orders, newest first, and whether another page follows."""
    statement = select(QuarantinedOrder).where(QuarantinedOrder.tenant_id == tenant_id)
    if query.backfill_job_id is not None:
        statement = statement.where(QuarantinedOrder.backfill_job_id == query.backfill_job_id)
    if query.after is not None:
        position = tuple_(QuarantinedOrder.created_at, QuarantinedOrder.id)
        statement = statement.where(position < query.after)
    statement = statement.order_by(
        QuarantinedOrder.created_at.desc(), QuarantinedOrder.id.desc()
    ).limit(query.limit + 1)
    rows = list(await session.scalars(statement))
    return rows[: query.limit], len(rows) > query.limit

"""Queries of the sync engine: backfill jobs, the orders it plans from, the connections it
syncs. Each names its tenant, except the few marked ``cross_tenant``, which say why."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.db import cross_tenant
from keybuzz.marketplaces.models import ConnectionStatus, MarketplaceConnection
from keybuzz.orders.models import Order
from keybuzz.orders.records import Detail
from keybuzz.sync.models import BackfillJob, BackfillStatus
from keybuzz.tenants.models import TenantId

ACTIVE = (BackfillStatus.QUEUED, BackfillStatus.RUNNING)


async def get_job(
    session: AsyncSession, tenant_id: TenantId, job_id: uuid.UUID
) -> BackfillJob | None:
    result = await session.scalars(
        select(BackfillJob).where(BackfillJob.tenant_id == tenant_id, BackfillJob.id == job_id)
    )
    return result.one_or_none()


async def active_job(
    session: AsyncSession, tenant_id: TenantId, marketplace: str
) -> BackfillJob | None:
    result = await session.scalars(
        select(BackfillJob)
        .where(
            BackfillJob.tenant_id == tenant_id,
            BackfillJob.marketplace == marketplace,
            BackfillJob.status.in_(ACTIVE),
        )
        .order_by(BackfillJob.created_at.desc())
    )
    return result.first()


async def list_jobs(session: AsyncSession, tenant_id: TenantId, limit: int) -> list[BackfillJob]:
    result = await session.scalars(
        select(BackfillJob)
        .where(BackfillJob.tenant_id == tenant_id)
        .order_by(BackfillJob.created_at.desc())
        .limit(limit)
    )
    return list(result)


async def update_job(session: AsyncSession, job: BackfillJob, **values: Any) -> BackfillJob:
    result = await session.execute(
        update(BackfillJob)
        .where(BackfillJob.tenant_id == job.tenant_id, BackfillJob.id == job.id)
        .values(**values)
        .returning(BackfillJob)
        .execution_options(populate_existing=True)
    )
    return result.scalar_one()


async def update_running_job(
    session: AsyncSession, tenant_id: TenantId, job_id: uuid.UUID, **values: Any
) -> BackfillJob | None:
    """Change a job that is still running; ``None`` if it is not (cancelled meanwhile)."""
    result = await session.execute(
        update(BackfillJob)
        .where(
            BackfillJob.tenant_id == tenant_id,
            BackfillJob.id == job_id,
            BackfillJob.status == BackfillStatus.RUNNING,
        )
        .values(**values)
        .returning(BackfillJob)
        .execution_options(populate_existing=True)
    )
    return result.scalar_one_or_none()


def _window(tenant_id: TenantId, marketplace: str, start: dt.datetime, end: dt.datetime) -> Any:
    return (
        Order.tenant_id == tenant_id,
        Order.marketplace == marketplace,
        Order.order_date >= start,
        Order.order_date < end,
    )


async def order_dates_below(
    session: AsyncSession,
    tenant_id: TenantId,
    marketplace: str,
    *,
    floor: dt.datetime,
    before: dt.datetime,
    limit: int,
) -> Sequence[dt.datetime]:
    """The creation dates of the newest ``limit`` orders of ``[floor, before)`` that only a
    report told of (their details still to bring), newest first."""
    result = await session.scalars(
        select(Order.order_date)
        .where(*_window(tenant_id, marketplace, floor, before), Order.detail == Detail.REPORT)
        .order_by(Order.order_date.desc())
        .limit(limit)
    )
    return list(result)


async def any_order_between(
    session: AsyncSession,
    tenant_id: TenantId,
    marketplace: str,
    start: dt.datetime,
    end: dt.datetime,
) -> bool:
    """Whether an order of ``[start, end]`` is stored."""
    statement = select(Order.id).where(
        Order.tenant_id == tenant_id,
        Order.marketplace == marketplace,
        Order.order_date >= start,
        Order.order_date <= end,
    )
    return await session.scalar(statement.limit(1)) is not None


async def count_to_enrich(
    session: AsyncSession,
    tenant_id: TenantId,
    marketplace: str,
    start: dt.datetime,
    end: dt.datetime,
) -> int:
    """Orders of ``[start, end)`` that only a report told of."""
    statement = select(func.count()).where(
        *_window(tenant_id, marketplace, start, end), Order.detail == Detail.REPORT
    )
    return int(await session.scalar(statement) or 0)


async def connections_due_for_sync(session: AsyncSession) -> list[tuple[TenantId, str]]:
    """Every CONNECTED connection with a sync watermark and no sync job queued or running."""
    statement = (
        select(MarketplaceConnection.tenant_id, MarketplaceConnection.marketplace)
        .where(
            MarketplaceConnection.status == ConnectionStatus.CONNECTED,
            MarketplaceConnection.synced_through.is_not(None),
            text(
                "NOT EXISTS (SELECT 1 FROM procrastinate_jobs j "
                "WHERE j.status IN ('todo', 'doing') "
                "AND j.queueing_lock = 'incremental:' || marketplace_connections.tenant_id "
                "|| ':' || marketplace_connections.marketplace)"
            ),
        )
        .order_by(MarketplaceConnection.tenant_id)
    )
    rows = await session.execute(
        cross_tenant(statement, "the sync scheduler looks after every tenant's connection")
    )
    return [(TenantId(tenant), marketplace) for tenant, marketplace in rows]

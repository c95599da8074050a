"""Queries on a tenant's backfill jobs (always tenant-scoped)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

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


async def advance_job(
    session: AsyncSession,
    tenant_id: TenantId,
    job_id: uuid.UUID,
    *,
    checkpoint: dict[str, Any] | None,
    orders: int,
) -> None:
    """Move the job's checkpoint on, ``orders`` more orders fetched."""
    await session.execute(
        update(BackfillJob)
        .where(BackfillJob.tenant_id == tenant_id, BackfillJob.id == job_id)
        .values(checkpoint=checkpoint, orders_fetched=BackfillJob.orders_fetched + orders)
    )

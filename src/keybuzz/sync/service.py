"""Backfills and syncs as the API and the CLI see them: request, follow, cancel a backfill;
refresh one order now; queue the jobs (in the caller's transaction) that do the work.

A request proves the connection usable before any job exists (a dead connection is a 409 that
says what to do, never a job that dies later). The job row and its queue entry are written in
one transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

import procrastinate
from procrastinate.exceptions import AlreadyEnqueued
from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.amazon.client import SpApiApp
from keybuzz.amazon.ratelimit import Priority
from keybuzz.amazon.windows import LATEST_BEFORE
from keybuzz.db import raw_connection
from keybuzz.errors import Conflict, NotFound
from keybuzz.jobs import bring_forward, defer_in_transaction, task_name
from keybuzz.marketplaces import service as connections
from keybuzz.orders import service as orders
from keybuzz.orders.models import EventSource
from keybuzz.orders.schemas import OrderRead
from keybuzz.orders.upsert import upsert_orders
from keybuzz.secrets import SecretStore
from keybuzz.sync import repository
from keybuzz.sync.models import BackfillJob, BackfillStatus
from keybuzz.sync.schemas import BackfillJobList, BackfillJobRead, BackfillRequest
from keybuzz.tenants.models import TenantId

logger = logging.getLogger(__name__)

NAMESPACE = "sync"
BACKFILL_ORDERS = "backfill_orders"
SYNC_ORDERS = "sync_orders"
SCHEDULE_SYNCS = "schedule_syncs"
SYNC_PRIORITY = 10
"""A connection's incremental sync goes before its backfill when both are due."""
REFRESH_WAIT = 1.0
"""A refresh waits this long at most for the seller's getOrder quota, else answers 429."""


class BackfillAlreadyQueued(Conflict):
    code = "backfill_already_queued"
    title = "A backfill is already queued for this tenant"


class BackfillNotFound(NotFound):
    code = "backfill_not_found"
    title = "No such backfill"


def connection_lock(tenant_id: TenantId, marketplace: str = connections.AMAZON) -> str:
    """One Amazon connection is synced by one job step at a time (``jobs.exclusively``)."""
    return f"sync:{tenant_id}:{marketplace}"


async def request_backfill(
    session: AsyncSession,
    amazon: SpApiApp,
    store: SecretStore,
    jobs: procrastinate.App,
    tenant_id: TenantId,
    request: BackfillRequest,
) -> tuple[BackfillJobRead, bool]:
    """The queued job for this request, and whether it is new (an active one is reused)."""
    await connections.require_connected(session, amazon, store, tenant_id)
    active = await repository.active_job(session, tenant_id, request.marketplace)
    if active is not None:
        return BackfillJobRead.of(active), False
    now = dt.datetime.now(dt.UTC)
    job = BackfillJob(
        tenant_id=tenant_id,
        marketplace=request.marketplace,
        status=BackfillStatus.QUEUED,
        days=request.days,
        purge=request.purge,
        window_start=now - dt.timedelta(days=request.days),
        window_end=now - LATEST_BEFORE,
    )
    session.add(job)
    await session.flush()
    queued = await defer_backfill_step(session, jobs, tenant_id, job.id, in_seconds=0.0)
    if queued is None:
        raise BackfillAlreadyQueued("A backfill for this tenant is already waiting.")
    return BackfillJobRead.of(job), True


async def get_backfill(
    session: AsyncSession, tenant_id: TenantId, job_id: uuid.UUID
) -> BackfillJobRead:
    return BackfillJobRead.of(await _job(session, tenant_id, job_id))


async def list_backfills(session: AsyncSession, tenant_id: TenantId) -> BackfillJobList:
    jobs = await repository.list_jobs(session, tenant_id, limit=50)
    return BackfillJobList(items=[BackfillJobRead.of(job) for job in jobs])


async def cancel_backfill(
    session: AsyncSession, jobs: procrastinate.App, tenant_id: TenantId, job_id: uuid.UUID
) -> BackfillJobRead:
    """End an active backfill CANCELLED: its queued step is dropped, a running step stops at
    its next page boundary; what was stored stays. An ended backfill is left as it is."""
    job = await _job(session, tenant_id, job_id)
    if job.status not in repository.ACTIVE:
        return BackfillJobRead.of(job)
    job = await repository.update_job(
        session,
        job,
        status=BackfillStatus.CANCELLED,
        estimated_done_at=None,
        finished_at=dt.datetime.now(dt.UTC),
    )
    if job.queue_job_id is not None:
        await jobs.job_manager.cancel_job_by_id_async(
            job.queue_job_id, connection=await raw_connection(session)
        )
    logger.info("backfill %s of %s cancelled", job.id, tenant_id)
    return BackfillJobRead.of(job)


async def _job(session: AsyncSession, tenant_id: TenantId, job_id: uuid.UUID) -> BackfillJob:
    job = await repository.get_job(session, tenant_id, job_id)
    if job is None:
        raise BackfillNotFound(f"No backfill {job_id} for this tenant.")
    return job


async def refresh_order(
    session: AsyncSession,
    amazon: SpApiApp,
    store: SecretStore,
    tenant_id: TenantId,
    order_id: uuid.UUID,
) -> OrderRead:
    """The order as Amazon has it now (getOrder, its own quota, before any backfill's calls),
    stored; 429 with ``Retry-After`` when the seller's getOrder quota is spent."""
    stored = await orders.get_order(session, tenant_id, order_id)
    usable = await connections.usable_connection(session, store, tenant_id)
    client = connections.amazon_client(
        amazon, usable.connection, usable.refresh_token, Priority.INTERACTIVE
    )
    record = await client.get_order_record(stored.external_order_id, max_wait=REFRESH_WAIT)
    await upsert_orders(session, tenant_id, [record], source=EventSource.REFRESH)
    return await orders.get_order(session, tenant_id, order_id)


async def defer_backfill_step(
    session: AsyncSession,
    jobs: procrastinate.App,
    tenant_id: TenantId,
    job_id: uuid.UUID,
    *,
    in_seconds: float,
) -> int | None:
    """Queue the backfill's next step, in the session's transaction; its queue id, or ``None``
    when a step of it is already queued."""
    try:
        async with session.begin_nested():
            queue_job_id = await defer_in_transaction(
                session,
                jobs,
                task_name(NAMESPACE, BACKFILL_ORDERS),
                queueing_lock=f"backfill:{tenant_id}:{connections.AMAZON}",
                schedule_in=in_seconds,
                backfill_job_id=str(job_id),
                tenant_id=tenant_id,
            )
    except AlreadyEnqueued:
        return None
    job = await repository.get_job(session, tenant_id, job_id)
    if job is not None:
        await repository.update_job(session, job, queue_job_id=queue_job_id)
    return queue_job_id


async def defer_sync(
    session: AsyncSession,
    jobs: procrastinate.App,
    tenant_id: TenantId,
    *,
    at: dt.datetime | None = None,
) -> None:
    """Queue the connection's incremental sync, due at ``at`` (else now); a sync already queued
    for later is brought forward to then."""
    due = at or dt.datetime.now(dt.UTC)
    queueing_lock = f"incremental:{tenant_id}:{connections.AMAZON}"
    try:
        async with session.begin_nested():
            await defer_in_transaction(
                session,
                jobs,
                task_name(NAMESPACE, SYNC_ORDERS),
                queueing_lock=queueing_lock,
                priority=SYNC_PRIORITY,
                schedule_in=(due - dt.datetime.now(dt.UTC)).total_seconds(),
                tenant_id=tenant_id,
            )
    except AlreadyEnqueued:
        await bring_forward(session, queueing_lock, due)

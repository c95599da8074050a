"""Backfills: a tenant asks for the last N days of its Amazon orders; a worker pulls them.

The request proves the connection usable before any job exists (a dead connection is a 409 that
says what to do, never a job that dies later). The job row and its queue entry are written in
one transaction. The worker side is a page at a time: the job (``sync.tasks``) walks Amazon's
pages and stores each one with its checkpoint in a unit of work of its own, so a retried job
resumes where the last one stopped.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass

import procrastinate
from procrastinate.exceptions import AlreadyEnqueued
from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.amazon.client import SpApiApp
from keybuzz.amazon.listing import ListingQuery, OrderRecordPage
from keybuzz.amazon.windows import Window
from keybuzz.errors import Conflict, NotFound
from keybuzz.jobs import defer_in_transaction, task_name
from keybuzz.marketplaces import service as connections
from keybuzz.marketplaces.repository import get_connection, update_connection
from keybuzz.orders.upsert import upsert_orders
from keybuzz.secrets import SecretStore
from keybuzz.sync import repository
from keybuzz.sync.models import BackfillJob, BackfillStatus
from keybuzz.sync.schemas import BackfillJobList, BackfillJobRead, BackfillRequest
from keybuzz.tenants.models import TenantId

logger = logging.getLogger(__name__)

NAMESPACE = "sync"
BACKFILL_ORDERS = "backfill_orders"
# Amazon's order data lags: upper bounds must be at least two minutes in the past.
AMAZON_LAG = dt.timedelta(minutes=2)


class BackfillAlreadyQueued(Conflict):
    code = "backfill_already_queued"
    title = "A backfill is already queued for this tenant"


class BackfillNotFound(NotFound):
    code = "backfill_not_found"
    title = "No such backfill"


def connection_lock(tenant_id: TenantId, marketplace: str = connections.AMAZON) -> str:
    """One Amazon connection is synced by one worker at a time."""
    return f"sync:{tenant_id}:{marketplace}"


def to_read(job: BackfillJob) -> BackfillJobRead:
    return BackfillJobRead.model_validate(job)


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
        return to_read(active), False
    now = dt.datetime.now(dt.UTC)
    job = BackfillJob(
        tenant_id=tenant_id,
        marketplace=request.marketplace,
        status=BackfillStatus.QUEUED,
        days=request.days,
        window_start=now - dt.timedelta(days=request.days),
        window_end=now - AMAZON_LAG,
        orders_fetched=0,
    )
    session.add(job)
    await session.flush()
    try:
        async with session.begin_nested():
            queue_job_id = await defer_in_transaction(
                session,
                jobs,
                task_name(NAMESPACE, BACKFILL_ORDERS),
                lock=connection_lock(tenant_id),
                queueing_lock=f"backfill:{tenant_id}:{request.marketplace}",
                backfill_job_id=str(job.id),
                tenant_id=tenant_id,
            )
    except AlreadyEnqueued:
        raise BackfillAlreadyQueued("A backfill for this tenant is already waiting.") from None
    job = await repository.update_job(session, job, queue_job_id=queue_job_id)
    return to_read(job), True


async def get_backfill(
    session: AsyncSession, tenant_id: TenantId, job_id: uuid.UUID
) -> BackfillJobRead:
    job = await repository.get_job(session, tenant_id, job_id)
    if job is None:
        raise BackfillNotFound(f"No backfill {job_id} for this tenant.")
    return to_read(job)


async def list_backfills(session: AsyncSession, tenant_id: TenantId) -> BackfillJobList:
    jobs = await repository.list_jobs(session, tenant_id, limit=50)
    return BackfillJobList(items=[to_read(job) for job in jobs])


# --- The worker side: each call is one unit of work of the job ---------------------------------


@dataclass(frozen=True)
class BackfillRun:
    """A started backfill: its job, and Amazon's pages from where the job stands."""

    job: BackfillJob
    pages: AsyncGenerator[OrderRecordPage, None]


async def start_backfill(
    session: AsyncSession,
    amazon: SpApiApp,
    store: SecretStore,
    tenant_id: TenantId,
    job_id: uuid.UUID,
) -> BackfillRun | None:
    """Mark the job RUNNING (``None``: it is over, nothing to do) and open Amazon's listing of
    its window, resumed after its checkpoint."""
    job = await repository.get_job(session, tenant_id, job_id)
    if job is None or job.status not in repository.ACTIVE:
        return None
    usable = await connections.require_connected(session, amazon, store, tenant_id)
    job = await repository.update_job(
        session,
        job,
        status=BackfillStatus.RUNNING,
        started_at=job.started_at or dt.datetime.now(dt.UTC),
    )
    client = connections.amazon_client(amazon, usable.connection, usable.refresh_token)
    query = ListingQuery(
        marketplace_ids=usable.connection.marketplace_ids,
        window=Window(created_after=job.window_start, created_before=job.window_end),
    )
    pages = client.list_order_records(query, position=job.checkpoint)
    return BackfillRun(job, pages)


async def store_page(session: AsyncSession, job: BackfillJob, page: OrderRecordPage) -> None:
    """One page of orders, and the checkpoint after it."""
    tenant_id = TenantId(job.tenant_id)
    await upsert_orders(session, tenant_id, page.records)
    await repository.advance_job(
        session,
        tenant_id,
        job.id,
        checkpoint=page.position.model_dump(mode="json") if page.position else None,
        orders=len(page.records),
    )


async def finish_backfill(session: AsyncSession, job: BackfillJob) -> None:
    now = dt.datetime.now(dt.UTC)
    tenant_id = TenantId(job.tenant_id)
    done = await repository.update_job(
        session, job, status=BackfillStatus.SUCCEEDED, finished_at=now
    )
    connection = await get_connection(session, tenant_id, connections.AMAZON)
    if connection is not None:
        await update_connection(session, connection, last_sync_at=now)
    logger.info("backfill %s of %s done: %d orders", job.id, tenant_id, done.orders_fetched)


async def fail_backfill(
    session: AsyncSession, tenant_id: TenantId, job_id: uuid.UUID, code: str, message: str
) -> None:
    """Record a job's final failure: a problem ``code`` and what happened."""
    job = await repository.get_job(session, tenant_id, job_id)
    if job is None or job.status not in repository.ACTIVE:
        return
    logger.warning("backfill %s of %s failed: %s", job.id, tenant_id, code)
    await repository.update_job(
        session,
        job,
        status=BackfillStatus.FAILED,
        error_code=code,
        error_message=message,
        finished_at=dt.datetime.now(dt.UTC),
    )

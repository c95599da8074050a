"""Backfills: a tenant asks for the last N days of its Amazon orders; a worker pulls them.

The request proves the connection usable before any job exists (a dead connection is a 409 that
says what to do, never a job that dies later). The job row and its queue entry are written in
one transaction. The worker commits each page of orders together with its checkpoint, so a
retried job resumes where the last one stopped.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from procrastinate.exceptions import AlreadyEnqueued
from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.amazon.errors import AmazonAccessDenied, AmazonAuthorizationRevoked
from keybuzz.db import transaction
from keybuzz.errors import Conflict, KeyBuzzError, NotFound
from keybuzz.jobs import defer_in_transaction
from keybuzz.marketplaces import service as connections
from keybuzz.marketplaces.models import ConnectionStatus
from keybuzz.marketplaces.repository import get_connection, update_connection
from keybuzz.orders.upsert import upsert_orders
from keybuzz.runtime import Runtime
from keybuzz.secrets import SecretStore
from keybuzz.sync import repository
from keybuzz.sync.models import BackfillJob, BackfillStatus
from keybuzz.sync.schemas import BackfillJobList, BackfillJobRead, BackfillRequest
from keybuzz.sync.tasks import BACKFILL_ORDERS
from keybuzz.tenants.models import TenantId

logger = logging.getLogger(__name__)

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
    runtime: Runtime,
    store: SecretStore,
    tenant_id: TenantId,
    request: BackfillRequest,
) -> tuple[BackfillJobRead, bool]:
    """The queued job for this request, and whether it is new (an active one is reused)."""
    await connections.require_connected(session, runtime, store, tenant_id)
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
                runtime.jobs,
                BACKFILL_ORDERS,
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


# --- The worker side --------------------------------------------------------------------------


async def run_backfill(runtime: Runtime, tenant_id: TenantId, job_id: uuid.UUID) -> None:
    """Pull the job's window page by page; safe to run again (it resumes, or does nothing)."""
    started = await _start(runtime, tenant_id, job_id)
    if started is None:
        return
    job, usable = started
    client = connections.amazon_client(runtime, usable.connection, usable.refresh_token)
    try:
        pages = client.list_order_records(
            marketplace_ids=usable.connection.marketplace_ids,
            created_after=job.window_start,
            created_before=job.window_end,
            position=job.checkpoint,
        )
        async for page in pages:
            async with transaction(runtime.sessionmaker) as session:
                await upsert_orders(session, tenant_id, page.records)
                job = await repository.update_job(
                    session,
                    job,
                    checkpoint=page.position.model_dump(mode="json") if page.position else None,
                    orders_fetched=job.orders_fetched + len(page.records),
                )
    except (AmazonAuthorizationRevoked, AmazonAccessDenied) as error:
        await _lost_authorization(runtime, tenant_id, job, error)
        return
    await _finish(runtime, tenant_id, job)


async def _start(
    runtime: Runtime, tenant_id: TenantId, job_id: uuid.UUID
) -> tuple[BackfillJob, connections.UsableConnection] | None:
    async with transaction(runtime.sessionmaker) as session:
        job = await repository.get_job(session, tenant_id, job_id)
        if job is None or job.status not in repository.ACTIVE:
            return None
        store = runtime.secrets.store(session)
        try:
            usable = await connections.require_connected(session, runtime, store, tenant_id)
        except (connections.AmazonNotConnected, connections.AmazonReconnectRequired) as error:
            await _fail(session, job, error)
            return None
        job = await repository.update_job(
            session,
            job,
            status=BackfillStatus.RUNNING,
            started_at=job.started_at or dt.datetime.now(dt.UTC),
        )
    return job, usable


async def _fail(session: AsyncSession, job: BackfillJob, error: KeyBuzzError) -> None:
    logger.warning("backfill %s of %s failed: %s", job.id, job.tenant_id, error.code)
    await repository.update_job(
        session,
        job,
        status=BackfillStatus.FAILED,
        error_code=error.code,
        error_message=error.detail or error.title,
        finished_at=dt.datetime.now(dt.UTC),
    )


async def fail_backfill(
    runtime: Runtime, tenant_id: TenantId, job_id: uuid.UUID, error: KeyBuzzError
) -> None:
    """Record a job's final failure (its retries are exhausted)."""
    async with transaction(runtime.sessionmaker) as session:
        job = await repository.get_job(session, tenant_id, job_id)
        if job is not None and job.status in repository.ACTIVE:
            await _fail(session, job, error)


async def _lost_authorization(
    runtime: Runtime, tenant_id: TenantId, job: BackfillJob, error: KeyBuzzError
) -> None:
    async with transaction(runtime.sessionmaker) as session:
        connection = await get_connection(session, tenant_id, connections.AMAZON)
        reason = (
            connections.REASON_REVOKED
            if isinstance(error, AmazonAuthorizationRevoked)
            else connections.REASON_ACCESS_DENIED
        )
        if connection is not None:
            await connections.mark(session, connection, ConnectionStatus.NEEDS_RECONNECT, reason)
        await _fail(session, job, connections.AmazonReconnectRequired(reason))


async def _finish(runtime: Runtime, tenant_id: TenantId, job: BackfillJob) -> None:
    now = dt.datetime.now(dt.UTC)
    async with transaction(runtime.sessionmaker) as session:
        await repository.update_job(session, job, status=BackfillStatus.SUCCEEDED, finished_at=now)
        connection = await get_connection(session, tenant_id, connections.AMAZON)
        if connection is not None:
            await update_connection(session, connection, last_sync_at=now)
    logger.info("backfill %s of %s done: %d orders", job.id, tenant_id, job.orders_fetched)

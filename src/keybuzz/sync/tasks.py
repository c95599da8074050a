"""Jobs of the sync domain: backfills and incremental syncs, one short step at a time.

A step does what the seller's quota allows now and defers the next step — in the transaction of
its last checkpoint — at the time the quota allows more, so no worker slot sleeps on a bucket
and any worker may take the next step. One Amazon connection's steps run one at a time (the
queue's lock); its incremental sync goes before its backfill (a higher priority).

A step that meets a failure worth another try (Amazon or the secret store unavailable, the
database gone for a moment) runs again after each wait of ``BACKFILL_RETRY`` in turn, resuming
after its last checkpoint; when the waits are spent, or on any other failure, a backfill is
FAILED for good with its reason (nothing of it stays queued) and a sync tries again at its next
interval. What an Amazon failure means for the connection is recorded whatever happens.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import AsyncIterator

import procrastinate
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.amazon.errors import AmazonThrottled, AmazonUnavailable
from keybuzz.db import tenant_transaction, transaction
from keybuzz.errors import KeyBuzzError
from keybuzz.jobs import JobGroup, RetrySchedule, exclusively, stopping
from keybuzz.marketplaces.service import (
    AmazonUnreachable,
    ConnectionFailure,
    connection_failure,
    record_failure_apart,
)
from keybuzz.runtime import Runtime, engine_url, runtime_of
from keybuzz.secrets import SecretStoreUnavailable
from keybuzz.sync import backfill, engine, repository, service
from keybuzz.sync.engine import Step
from keybuzz.tenants.models import TenantId

logger = logging.getLogger(__name__)

BACKFILL_RETRY = RetrySchedule(
    waits=(30, 60, 120, 300, 600, 600),
    retry_on=(
        AmazonUnavailable,
        AmazonThrottled,
        AmazonUnreachable,
        SecretStoreUnavailable,
        OperationalError,
        InterfaceError,
    ),
)
SCHEDULE_EVERY = "* * * * * */15"
BUSY_RETRY = 1.0
"""Seconds before a step comes back when another step of its connection is running."""
"""The sync scheduler's cron (seconds last): it looks for connections without a sync queued."""


class BackfillCrashed(KeyBuzzError):
    code = "backfill_crashed"
    title = "The backfill stopped on an unexpected error; the service log has the details"


def job_group(*, retry: RetrySchedule = BACKFILL_RETRY) -> JobGroup:
    blueprint = procrastinate.Blueprint()

    async def backfill_orders(
        context: procrastinate.JobContext, backfill_job_id: str, tenant_id: str
    ) -> None:
        runtime = runtime_of(context)
        job_id, tenant = uuid.UUID(backfill_job_id), TenantId(tenant_id)
        continuation = _backfill_continuation(runtime, tenant, job_id)
        step = _step(runtime, context, tenant, continue_in=continuation)
        try:
            async with _connection_to_itself(runtime, tenant, step) as mine:
                if mine:
                    await engine.backfill_step(step, tenant, job_id)
        except Exception as error:
            final = retry.next_wait(error, _attempt(context)) is None
            await _backfill_failed(runtime, tenant, job_id, error, _attempt(context), final=final)
            raise

    async def sync_orders(context: procrastinate.JobContext, tenant_id: str) -> None:
        runtime = runtime_of(context)
        tenant = TenantId(tenant_id)
        settings = runtime.settings
        step = _step(runtime, context, tenant, continue_in=_sync_continuation(runtime, tenant))
        try:
            async with _connection_to_itself(runtime, tenant, step) as mine:
                if mine:
                    await engine.sync_step(
                        step,
                        tenant,
                        interval=dt.timedelta(seconds=settings.sync_interval_seconds),
                        catch_up_after=dt.timedelta(seconds=settings.sync_catch_up_after_seconds),
                    )
        except Exception as error:
            final = retry.next_wait(error, _attempt(context)) is None
            await _sync_failed(runtime, tenant, error, final=final)
            raise

    async def schedule_syncs(context: procrastinate.JobContext, timestamp: int) -> None:
        """Every connection to keep current has its sync queued (a lost one is put back)."""
        runtime = runtime_of(context)
        async with transaction(runtime.privileged_sessionmaker) as session:
            for tenant, _ in await repository.connections_due_for_sync(session):
                await service.defer_sync(session, runtime.jobs, tenant)

    blueprint.task(name=service.BACKFILL_ORDERS, pass_context=True, retry=retry)(backfill_orders)
    blueprint.task(name=service.SYNC_ORDERS, pass_context=True, retry=retry)(sync_orders)
    scheduler = blueprint.task(
        name=service.SCHEDULE_SYNCS,
        pass_context=True,
        queueing_lock=f"{service.NAMESPACE}:{service.SCHEDULE_SYNCS}",
    )(schedule_syncs)
    blueprint.periodic(cron=SCHEDULE_EVERY, periodic_id=service.SCHEDULE_SYNCS)(scheduler)
    return JobGroup(service.NAMESPACE, blueprint)


@contextlib.asynccontextmanager
async def _connection_to_itself(
    runtime: Runtime, tenant: TenantId, step: Step
) -> AsyncIterator[bool]:
    """Whether this step has the tenant's Amazon connection to itself; if another step has
    it, this one comes back shortly (``BUSY_RETRY``)."""
    async with exclusively(engine_url(runtime.engine), service.connection_lock(tenant)) as mine:
        if not mine:
            async with step.transaction() as session:
                await step.continue_in(session, BUSY_RETRY)
        yield mine


def _attempt(context: procrastinate.JobContext) -> int:
    assert context.job is not None
    return context.job.attempts + 1


def _step(
    runtime: Runtime,
    context: procrastinate.JobContext,
    tenant: TenantId,
    *,
    continue_in: engine.Continuation,
) -> Step:
    async def sync_from(session: AsyncSession, tenant: TenantId, at: dt.datetime) -> None:
        await service.defer_sync(session, runtime.jobs, tenant, at=at)

    return Step(tenant, runtime, stopping(context), continue_in, sync_from)


def _backfill_continuation(
    runtime: Runtime, tenant: TenantId, job_id: uuid.UUID
) -> engine.Continuation:
    async def continue_in(session: AsyncSession, seconds: float) -> None:
        await service.defer_backfill_step(session, runtime.jobs, tenant, job_id, in_seconds=seconds)

    return continue_in


def _sync_continuation(runtime: Runtime, tenant: TenantId) -> engine.Continuation:
    async def continue_in(session: AsyncSession, seconds: float) -> None:
        at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=max(0.0, seconds))
        await service.defer_sync(session, runtime.jobs, tenant, at=at)

    return continue_in


async def _backfill_failed(
    runtime: Runtime,
    tenant_id: TenantId,
    job_id: uuid.UUID,
    error: Exception,
    attempt: int,
    *,
    final: bool,
) -> None:
    """The one place a backfill's failure is handled: the connection learns what it means; a
    final failure ends the job with its reason."""
    failure = await _record_for_connection(runtime, tenant_id, error)
    if not final:
        logger.warning(
            "backfill %s of %s: attempt %d failed (%s); it will run again",
            job_id,
            tenant_id,
            attempt,
            type(error).__name__,
        )
        return
    async with tenant_transaction(runtime.sessionmaker, tenant_id) as session:
        await backfill.fail(
            session, tenant_id, job_id, _reported_error(error, failure), attempts=attempt
        )


async def _sync_failed(
    runtime: Runtime, tenant_id: TenantId, error: Exception, *, final: bool
) -> None:
    await _record_for_connection(runtime, tenant_id, error)
    if not final:
        return
    logger.warning("sync of %s failed (%s): next try at its interval", tenant_id, error)
    interval = dt.timedelta(seconds=runtime.settings.sync_interval_seconds)
    async with tenant_transaction(runtime.sessionmaker, tenant_id) as session:
        await service.defer_sync(
            session, runtime.jobs, tenant_id, at=dt.datetime.now(dt.UTC) + interval
        )


async def _record_for_connection(
    runtime: Runtime, tenant_id: TenantId, error: Exception
) -> ConnectionFailure | None:
    failure = connection_failure(error, tenant_id)
    if failure is not None:
        await record_failure_apart(runtime.sessionmaker, failure)
    return failure


def _reported_error(error: Exception, failure: ConnectionFailure | None) -> KeyBuzzError:
    """What the job's reader is told: what the connection needs, else what went wrong."""
    if failure is not None and not isinstance(failure, AmazonUnreachable):
        return failure
    if isinstance(error, KeyBuzzError):
        return error
    logger.error("backfill stopped on an unexpected error", exc_info=error)
    return BackfillCrashed()

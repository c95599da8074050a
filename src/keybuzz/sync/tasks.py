"""Jobs of the sync domain: the backfill, page by page, each page its own unit of work.

A backfill that meets a failure worth another try (Amazon or the secret store unavailable, the
database gone for a moment) runs again after each wait of ``BACKFILL_RETRY`` in turn, resuming
after its last stored page; when the waits are spent, or on any other failure, the job is
FAILED for good with its reason, and nothing of it stays queued. What an Amazon failure means
for the connection (reconnect, an operator) is recorded whatever happens to the job.
"""

from __future__ import annotations

import contextlib
import logging
import uuid

import procrastinate
from sqlalchemy.exc import InterfaceError, OperationalError

from keybuzz.amazon.errors import AmazonThrottled, AmazonUnavailable
from keybuzz.db import transaction
from keybuzz.errors import KeyBuzzError
from keybuzz.jobs import JobGroup, RetrySchedule
from keybuzz.marketplaces.service import (
    AmazonUnreachable,
    ConnectionFailure,
    connection_failure,
    record_failure_apart,
)
from keybuzz.runtime import Runtime, runtime_of
from keybuzz.secrets import SecretStoreUnavailable
from keybuzz.sync import service
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
        try:
            await _backfill(runtime, tenant, job_id)
        except Exception as error:
            assert context.job is not None
            attempt = context.job.attempts + 1
            final = retry.next_wait(error, attempt) is None
            await _failed(runtime, tenant, job_id, error, attempt, final=final)
            raise

    blueprint.task(name=service.BACKFILL_ORDERS, pass_context=True, retry=retry)(backfill_orders)
    return JobGroup(service.NAMESPACE, blueprint)


async def _backfill(runtime: Runtime, tenant_id: TenantId, job_id: uuid.UUID) -> None:
    async with transaction(runtime.sessionmaker) as session:
        store = runtime.secrets.store(session)
        run = await service.start_backfill(session, runtime.amazon, store, tenant_id, job_id)
    if run is None:
        return
    async with contextlib.aclosing(run.pages) as pages:
        async for page in pages:
            async with transaction(runtime.sessionmaker) as session:
                await service.store_page(session, run.job, page)
    async with transaction(runtime.sessionmaker) as session:
        await service.finish_backfill(session, run.job)


async def _failed(
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
    failure = connection_failure(error, tenant_id)
    if failure is not None:
        await record_failure_apart(runtime.sessionmaker, failure)
    if not final:
        logger.warning(
            "backfill %s of %s: attempt %d failed (%s); it will run again",
            job_id,
            tenant_id,
            attempt,
            type(error).__name__,
        )
        return
    reported = _reported_error(error, failure)
    message = reported.detail or reported.title
    if attempt > 1:
        message = f"{message} (gave up after {attempt} attempts)"
    async with transaction(runtime.sessionmaker) as session:
        await service.fail_backfill(session, tenant_id, job_id, reported.code, message)


def _reported_error(error: Exception, failure: ConnectionFailure | None) -> KeyBuzzError:
    """What the job's reader is told: what the connection needs, else what went wrong."""
    if failure is not None and not isinstance(failure, AmazonUnreachable):
        return failure
    if isinstance(error, KeyBuzzError):
        return error
    logger.error("backfill stopped on an unexpected error", exc_info=error)
    return BackfillCrashed()

"""Jobs of the sync domain."""

from __future__ import annotations

import uuid

import procrastinate

from keybuzz.amazon.errors import AmazonUnavailable
from keybuzz.errors import KeyBuzzError
from keybuzz.secrets import SecretStoreUnavailable
from keybuzz.tenants.models import TenantId

MAX_ATTEMPTS = 6
RETRYABLE = (AmazonUnavailable, SecretStoreUnavailable)
BACKFILL_ORDERS = "sync:backfill_orders"


def register(app: procrastinate.App) -> None:
    app.task(
        name=BACKFILL_ORDERS,
        pass_context=True,
        retry=procrastinate.RetryStrategy(
            max_attempts=MAX_ATTEMPTS, exponential_wait=15, retry_exceptions=set(RETRYABLE)
        ),
    )(backfill_orders)


async def backfill_orders(
    context: procrastinate.JobContext, backfill_job_id: str, tenant_id: str
) -> None:
    from keybuzz.sync import service

    runtime = context.additional_context["runtime"]
    job_id, tenant = uuid.UUID(backfill_job_id), TenantId(tenant_id)
    try:
        await service.run_backfill(runtime, tenant, job_id)
    except RETRYABLE as error:
        assert context.job is not None
        if context.job.attempts + 1 >= MAX_ATTEMPTS:
            await service.fail_backfill(runtime, tenant, job_id, error)
        raise
    except KeyBuzzError as error:
        await service.fail_backfill(runtime, tenant, job_id, error)
        raise

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from keybuzz.amazon.errors import AmazonQuotaExhausted
from keybuzz.deps import RuntimeDep, SecretStoreDep, SessionDep, TenantDep
from keybuzz.http_limits import AuthenticatedBody
from keybuzz.marketplaces.service import (
    AmazonConnectionFailing,
    AmazonNotConnected,
    AmazonReconnectRequired,
)
from keybuzz.orders.schemas import OrderRead
from keybuzz.orders.service import OrderNotFound
from keybuzz.problems import problem_responses
from keybuzz.secrets.store import SecretStoreUnavailable
from keybuzz.sync import service
from keybuzz.sync.schemas import BackfillJobList, BackfillJobRead, BackfillRequest
from keybuzz.sync.service import BackfillAlreadyQueued, BackfillNotFound

router = APIRouter(
    prefix="/api/v1/orders/backfill", tags=["backfill"], route_class=AuthenticatedBody
)


@router.post(
    "",
    response_model=BackfillJobRead,
    status_code=202,
    summary="Import the last N days of the tenant's Amazon orders",
    description="Answers 202 with the job it queued, or 200 with the one already active. "
    "Without a usable Amazon connection: 409 `amazon_not_connected` or "
    "`amazon_reconnect_required`, with the action to take.",
    responses={
        200: {"model": BackfillJobRead, "description": "The backfill already active"},
        **problem_responses(
            AmazonNotConnected,
            AmazonReconnectRequired,
            AmazonConnectionFailing,
            BackfillAlreadyQueued,
            SecretStoreUnavailable,
        ),
    },
)
async def request_backfill(
    session: SessionDep,
    runtime: RuntimeDep,
    store: SecretStoreDep,
    tenant: TenantDep,
    response: Response,
    request: BackfillRequest | None = None,
) -> BackfillJobRead:
    job, created = await service.request_backfill(
        session, runtime.amazon, store, runtime.jobs, tenant, request or BackfillRequest()
    )
    if not created:
        response.status_code = 200
    return job


@router.get(
    "",
    response_model=BackfillJobList,
    summary="The tenant's recent backfills, newest first",
)
async def list_backfills(session: SessionDep, tenant: TenantDep) -> BackfillJobList:
    return await service.list_backfills(session, tenant)


@router.get(
    "/{job_id:uuid}",
    response_model=BackfillJobRead,
    summary="One backfill's progress",
    responses=problem_responses(BackfillNotFound),
)
async def get_backfill(
    session: SessionDep, tenant: TenantDep, job_id: uuid.UUID
) -> BackfillJobRead:
    return await service.get_backfill(session, tenant, job_id)


@router.post(
    "/{job_id:uuid}/cancel",
    response_model=BackfillJobRead,
    summary="Cancel a backfill: it ends CANCELLED at its next page boundary, what was stored stays",
    responses=problem_responses(BackfillNotFound),
)
async def cancel_backfill(
    session: SessionDep, runtime: RuntimeDep, tenant: TenantDep, job_id: uuid.UUID
) -> BackfillJobRead:
    return await service.cancel_backfill(session, runtime.jobs, tenant, job_id)


orders_router = APIRouter(prefix="/api/v1/orders", tags=["orders"], route_class=AuthenticatedBody)


@orders_router.post(
    "/{order_id:uuid}/refresh",
    response_model=OrderRead,
    summary="Refresh one order from Amazon now",
    description="Asks Amazon for the order (getOrder, its own quota, ahead of any backfill) and "
    "stores what it says. When the seller's quota for it is spent: 429 `amazon_quota_exhausted` "
    "with `Retry-After`.",
    responses=problem_responses(
        OrderNotFound,
        AmazonQuotaExhausted,
        AmazonNotConnected,
        AmazonReconnectRequired,
        AmazonConnectionFailing,
        SecretStoreUnavailable,
    ),
)
async def refresh_order(
    session: SessionDep,
    runtime: RuntimeDep,
    store: SecretStoreDep,
    tenant: TenantDep,
    order_id: uuid.UUID,
) -> OrderRead:
    return await service.refresh_order(session, runtime.amazon, store, tenant, order_id)

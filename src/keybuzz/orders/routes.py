from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from keybuzz.deps import CredentialsDep, ReadsDep, SessionDep, TenantDep
from keybuzz.errors import Forbidden, InvalidInput, Unauthenticated
from keybuzz.orders import reads as order_reads
from keybuzz.orders import service
from keybuzz.orders.schemas import (
    OrderEventList,
    OrderListParams,
    OrderPage,
    OrderPatch,
    OrderRead,
    PurgeResult,
    QuarantineListParams,
    QuarantinePage,
)
from keybuzz.orders.service import OrderNotFound, PurgeNotConfirmed
from keybuzz.problems import problem_responses
from keybuzz.schemas import SqlText

router = APIRouter(prefix="/api/v1/orders", tags=["orders"])
# Its own router, registered before ``router``: /orders/quarantine is no order id.
quarantine_router = APIRouter(prefix="/api/v1/orders/quarantine", tags=["orders"])

_AUTH_PROBLEMS = (Unauthenticated, Forbidden)


def _json(body: bytes) -> Response:
    """The JSON PostgreSQL built, as it is (``keybuzz.orders.reads``); ``response_model`` still
    documents it, and the tests hold the two together."""
    return Response(content=body, media_type="application/json")


@router.get(
    "",
    response_model=OrderPage,
    summary="List and search the tenant's orders",
    responses=problem_responses(InvalidInput, *_AUTH_PROBLEMS),
)
async def list_orders(
    reads: ReadsDep, credentials: CredentialsDep, params: Annotated[OrderListParams, Query()]
) -> Response:
    return _json(await order_reads.list_orders_json(reads, credentials, params))


@router.delete(
    "",
    response_model=PurgeResult,
    summary="Delete the tenant's orders (all, or one marketplace's)",
    responses=problem_responses(PurgeNotConfirmed, *_AUTH_PROBLEMS),
)
async def purge_orders(
    session: SessionDep,
    tenant: TenantDep,
    marketplace: Annotated[SqlText | None, Query(max_length=32)] = None,
    confirm: Annotated[bool, Query(description="Must be true: the deletion is final.")] = False,
) -> PurgeResult:
    return await service.purge_orders(session, tenant, marketplace=marketplace, confirm=confirm)


@router.get(
    "/{order_id}",
    response_model=OrderRead,
    summary="One order with its items",
    responses=problem_responses(OrderNotFound, *_AUTH_PROBLEMS),
)
async def get_order(reads: ReadsDep, credentials: CredentialsDep, order_id: uuid.UUID) -> Response:
    return _json(await order_reads.order_json(reads, credentials, order_id))


@router.get(
    "/{order_id}/events",
    response_model=OrderEventList,
    summary="An order's timeline: every change of its statuses and tracking code, oldest first",
    responses=problem_responses(OrderNotFound, *_AUTH_PROBLEMS),
)
async def list_order_events(
    reads: ReadsDep, credentials: CredentialsDep, order_id: uuid.UUID
) -> Response:
    return _json(await order_reads.order_events_json(reads, credentials, order_id))


@router.patch(
    "/{order_id}",
    response_model=OrderRead,
    summary="Change the helpdesk-owned fields of an order (savStatus)",
    responses=problem_responses(OrderNotFound, *_AUTH_PROBLEMS),
)
async def update_order(
    session: SessionDep, tenant: TenantDep, order_id: uuid.UUID, patch: OrderPatch
) -> OrderRead:
    return await service.update_order(session, tenant, order_id, patch)


@quarantine_router.get(
    "",
    response_model=QuarantinePage,
    summary="Orders the marketplace sent that could not be stored, newest first",
    responses=problem_responses(InvalidInput, *_AUTH_PROBLEMS),
)
async def list_quarantine(
    session: SessionDep, tenant: TenantDep, params: Annotated[QuarantineListParams, Query()]
) -> QuarantinePage:
    return await service.list_quarantine(session, tenant, params)

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from keybuzz.deps import AdmitDep, CredentialsDep, ReadsDep, SessionDep, TenantDep
from keybuzz.errors import InvalidInput
from keybuzz.http_limits import AuthenticatedBody
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

router = APIRouter(prefix="/api/v1/orders", tags=["orders"], route_class=AuthenticatedBody)
# Its own router, registered before ``router``: /orders/quarantine is no order id.
quarantine_router = APIRouter(
    prefix="/api/v1/orders/quarantine", tags=["orders"], route_class=AuthenticatedBody
)


def _json(body: bytes) -> Response:
    """The JSON PostgreSQL built, as it is (``keybuzz.orders.reads``); ``response_model`` still
    documents it, and the tests hold the two together."""
    return Response(content=body, media_type="application/json")


@router.get(
    "",
    response_model=OrderPage,
    summary="List and search the tenant's orders",
    responses=problem_responses(InvalidInput),
)
async def list_orders(
    reads: ReadsDep,
    credentials: CredentialsDep,
    admit: AdmitDep,
    params: Annotated[OrderListParams, Query()],
) -> Response:
    return _json(await order_reads.list_orders_json(reads, credentials, params, admit))


@router.delete(
    "",
    response_model=PurgeResult,
    summary="Delete the tenant's orders (all, or one marketplace's)",
    responses=problem_responses(PurgeNotConfirmed),
)
async def purge_orders(
    session: SessionDep,
    tenant: TenantDep,
    confirm: Annotated[
        bool,
        Query(
            description="Must be true: the deletion is final. False: 400 "
            "`purge_not_confirmed` saying how many orders it would delete.",
            json_schema_extra={"enum": [True]},
        ),
    ],
    marketplace: Annotated[SqlText | None, Query(max_length=32)] = None,
) -> PurgeResult:
    return await service.purge_orders(session, tenant, marketplace=marketplace, confirm=confirm)


@router.get(
    "/{order_id:uuid}",
    response_model=OrderRead,
    summary="One order with its items",
    responses=problem_responses(OrderNotFound),
)
async def get_order(
    reads: ReadsDep, credentials: CredentialsDep, admit: AdmitDep, order_id: uuid.UUID
) -> Response:
    return _json(await order_reads.order_json(reads, credentials, order_id, admit))


@router.get(
    "/{order_id:uuid}/events",
    response_model=OrderEventList,
    summary="An order's timeline: every change of its statuses and tracking code, oldest first",
    responses=problem_responses(OrderNotFound),
)
async def list_order_events(
    reads: ReadsDep, credentials: CredentialsDep, admit: AdmitDep, order_id: uuid.UUID
) -> Response:
    return _json(await order_reads.order_events_json(reads, credentials, order_id, admit))


@router.patch(
    "/{order_id:uuid}",
    response_model=OrderRead,
    summary="Change the helpdesk-owned fields of an order (savStatus)",
    responses=problem_responses(OrderNotFound),
)
async def update_order(
    session: SessionDep, tenant: TenantDep, order_id: uuid.UUID, patch: OrderPatch
) -> OrderRead:
    return await service.update_order(session, tenant, order_id, patch)


@quarantine_router.get(
    "",
    response_model=QuarantinePage,
    summary="Orders the marketplace sent that could not be stored, newest first",
    responses=problem_responses(InvalidInput),
)
async def list_quarantine(
    session: SessionDep, tenant: TenantDep, params: Annotated[QuarantineListParams, Query()]
) -> QuarantinePage:
    return await service.list_quarantine(session, tenant, params)

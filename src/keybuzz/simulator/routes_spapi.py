"""SP-API routes on the production paths: thin handlers over the operation modules."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from keybuzz.simulator import orders_v0, orders_v2026, reports_api, sellers_api, tokens_api
from keybuzz.simulator.gateway import Call, spapi_call

router = APIRouter()


def public_base_url(request: Request, call: Call) -> str:
    configured = call.simulator.settings.public_url
    if configured:
        return configured.rstrip("/")
    server = request.scope.get("server")
    if server is None:
        return str(request.base_url).rstrip("/")
    host, port = server
    return f"http://{host}:{port}"


@router.get("/orders/v0/orders")
async def get_orders(
    request: Request, call: Annotated[Call, Depends(spapi_call("v0.getOrders"))]
) -> Response:
    return call.answer(lambda: orders_v0.get_orders(call, request.query_params))


@router.get("/orders/v0/orders/{order_id}")
async def get_order_v0(
    order_id: str, call: Annotated[Call, Depends(spapi_call("v0.getOrder"))]
) -> Response:
    return call.answer(lambda: orders_v0.get_order(call, order_id))


@router.get("/orders/v0/orders/{order_id}/orderItems")
async def get_order_items(
    order_id: str,
    request: Request,
    call: Annotated[Call, Depends(spapi_call("v0.getOrderItems"))],
) -> Response:
    return call.answer(lambda: orders_v0.get_order_items(call, order_id, request.query_params))


@router.get("/orders/v0/orders/{order_id}/address")
async def get_order_address(
    order_id: str, call: Annotated[Call, Depends(spapi_call("v0.getOrderAddress"))]
) -> Response:
    return call.answer(lambda: orders_v0.get_order_address(call, order_id))


@router.get("/orders/v0/orders/{order_id}/buyerInfo")
async def get_order_buyer_info(
    order_id: str, call: Annotated[Call, Depends(spapi_call("v0.getOrderBuyerInfo"))]
) -> Response:
    return call.answer(lambda: orders_v0.get_order_buyer_info(call, order_id))


@router.get("/orders/v0/orders/{order_id}/orderItems/buyerInfo")
async def get_order_items_buyer_info(
    order_id: str,
    request: Request,
    call: Annotated[Call, Depends(spapi_call("v0.getOrderItemsBuyerInfo"))],
) -> Response:
    return call.answer(
        lambda: orders_v0.get_order_items_buyer_info(call, order_id, request.query_params)
    )


@router.get("/orders/2026-01-01/orders")
async def search_orders(
    request: Request, call: Annotated[Call, Depends(spapi_call("v2026.searchOrders"))]
) -> Response:
    return call.answer(lambda: orders_v2026.search_orders(call, request.query_params))


@router.get("/orders/2026-01-01/orders/{order_id}")
async def get_order_v2026(
    order_id: str,
    request: Request,
    call: Annotated[Call, Depends(spapi_call("v2026.getOrder"))],
) -> Response:
    return call.answer(lambda: orders_v2026.get_order(call, order_id, request.query_params))


@router.post("/reports/2021-06-30/reports")
async def create_report(
    request: Request, call: Annotated[Call, Depends(spapi_call("reports.createReport"))]
) -> Response:
    body = await request.body()
    return call.answer(lambda: reports_api.create_report(call, body), status=202)


@router.get("/reports/2021-06-30/reports/{report_id}")
async def get_report(
    report_id: str, call: Annotated[Call, Depends(spapi_call("reports.getReport"))]
) -> Response:
    return call.answer(lambda: reports_api.get_report(call, report_id))


@router.get("/reports/2021-06-30/documents/{document_id}")
async def get_report_document(
    document_id: str,
    request: Request,
    call: Annotated[Call, Depends(spapi_call("reports.getReportDocument"))],
) -> Response:
    base_url = public_base_url(request, call)
    encoding = request.query_params.get("enableContentEncodingUrlHeader", "").lower() == "true"
    return call.answer(
        lambda: reports_api.get_report_document(call, document_id, base_url, encoding)
    )


@router.get("/sellers/v1/marketplaceParticipations")
async def get_marketplace_participations(
    call: Annotated[Call, Depends(spapi_call("sellers.getMarketplaceParticipations"))],
) -> Response:
    return call.answer(lambda: sellers_api.marketplace_participations(call))


@router.post("/tokens/2021-03-01/restrictedDataToken")
async def create_restricted_data_token(
    request: Request,
    call: Annotated[Call, Depends(spapi_call("tokens.createRestrictedDataToken"))],
) -> Response:
    body = await request.body()
    return call.answer(lambda: tokens_api.create_restricted_data_token(call, body))

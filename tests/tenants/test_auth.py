"""Every /api/v1 route needs a valid key for the tenant named; no tenant sees another's data."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.orders.service import upsert_orders
from keybuzz.tenants.service import revoke_api_keys
from tests.factories import TenantCredentials, order_record
from tests.fixtures.routes import ROUTE_REQUESTS, send_route_request

PROBLEM = "application/problem+json"

# Reached by the seller's browser coming back from Amazon; its `state` is the credential.
PUBLIC_PATHS = {"/api/v1/marketplaces/amazon/oauth/callback"}


def tenant_routes(app: FastAPI) -> set[tuple[str, str]]:
    """Every documented /api/v1 operation that is not public."""
    return {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if path.startswith("/api/v1/") and path not in PUBLIC_PATHS
        for method in operations
    }


def test_every_tenant_route_is_covered_by_these_tests(app: FastAPI) -> None:
    assert tenant_routes(app) == set(ROUTE_REQUESTS)


HeaderMaker = Callable[[TenantCredentials, TenantCredentials], dict[str, str]]
BAD_CREDENTIALS: dict[str, tuple[HeaderMaker, int]] = {
    "no key, tenant header only": (lambda me, other: {"X-Tenant-Id": me.id}, 401),
    "no headers": (lambda me, other: {}, 401),
    "unknown key": (
        lambda me, other: {"Authorization": "Bearer kb_forged", "X-Tenant-Id": me.id},
        401,
    ),
    "basic auth": (
        lambda me, other: {"Authorization": f"Basic {me.api_key}", "X-Tenant-Id": me.id},
        401,
    ),
    "key of another tenant": (
        lambda me, other: {"Authorization": f"Bearer {other.api_key}", "X-Tenant-Id": me.id},
        403,
    ),
    "no tenant header": (lambda me, other: {"Authorization": f"Bearer {me.api_key}"}, 403),
    "two tenants in the header": (
        lambda me, other: {
            "Authorization": f"Bearer {me.api_key}",
            "X-Tenant-Id": f"{me.id}, {other.id}",
        },
        400,
    ),
}


async def test_two_tenant_headers_are_refused_even_when_the_first_is_right(
    client: httpx.AsyncClient, tenant: TenantCredentials, other_tenant: TenantCredentials
) -> None:
    headers = [
        ("Authorization", f"Bearer {tenant.api_key}"),
        ("X-Tenant-Id", tenant.id),
        ("X-Tenant-Id", other_tenant.id),
    ]

    response = await client.get("/api/v1/orders", headers=headers)

    assert response.status_code == 400
    assert response.json()["code"] == "ambiguous_tenant"


@pytest.mark.parametrize("route", sorted(ROUTE_REQUESTS))
@pytest.mark.parametrize("case", sorted(BAD_CREDENTIALS))
async def test_bad_credentials_are_refused_on_every_route(
    client: httpx.AsyncClient,
    session: AsyncSession,
    tenant: TenantCredentials,
    other_tenant: TenantCredentials,
    route: tuple[str, str],
    case: str,
) -> None:
    await upsert_orders(session, tenant.id, [order_record()])
    make_headers, status = BAD_CREDENTIALS[case]

    response = await send_route_request(
        client, ROUTE_REQUESTS[route], uuid.uuid4(), make_headers(tenant, other_tenant)
    )

    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("route", sorted(ROUTE_REQUESTS))
async def test_a_tenant_never_reaches_another_tenants_orders(
    client: httpx.AsyncClient,
    session: AsyncSession,
    tenant: TenantCredentials,
    other_tenant: TenantCredentials,
    route: tuple[str, str],
) -> None:
    victim_record = order_record(customer_name="Victim Buyer")
    await upsert_orders(session, other_tenant.id, [victim_record])
    await upsert_orders(session, tenant.id, [order_record()])
    victim = (await client.get("/api/v1/orders", headers=other_tenant.headers)).json()["items"][0]

    response = await send_route_request(client, ROUTE_REQUESTS[route], victim["id"], tenant.headers)

    assert victim_record.external_order_id not in response.text
    assert "Victim Buyer" not in response.text
    if route[1].endswith(("{order_id}", "{job_id}")):
        assert response.status_code == 404
    after = await client.get(f"/api/v1/orders/{victim['id']}", headers=other_tenant.headers)
    assert after.json() == victim


async def test_a_revoked_key_no_longer_works(
    client: httpx.AsyncClient, session: AsyncSession, tenant: TenantCredentials
) -> None:
    assert (await client.get("/api/v1/orders", headers=tenant.headers)).status_code == 200

    await revoke_api_keys(session, tenant.id)

    assert (await client.get("/api/v1/orders", headers=tenant.headers)).status_code == 401

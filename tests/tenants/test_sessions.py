"""The Orders page's session cookie on the JSON API: it reads like the API key does, every change
made with it needs the page's CSRF token, and it ends with sign-out, expiry or the key's
revocation."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.orders.service import upsert_orders
from keybuzz.tenants.service import revoke_api_keys
from tests.factories import TenantCredentials, order_record
from tests.fixtures.routes import ROUTE_REQUESTS, send_route_request
from tests.fixtures.sessions import sign_in

CSRF = "X-CSRF-Token"
CHANGES = sorted(route for route in ROUTE_REQUESTS if route[0] not in ("GET", "HEAD"))


async def test_the_session_cookie_reads_the_api(
    client: httpx.AsyncClient, session: AsyncSession, tenant: TenantCredentials
) -> None:
    await upsert_orders(session, tenant.id, [order_record(customer_name="Léa Martin")])
    await sign_in(client, tenant.api_key)

    with_header = await client.get("/api/v1/orders", headers={"X-Tenant-Id": tenant.id})
    without_header = await client.get("/api/v1/orders")

    assert with_header.status_code == 200
    assert [o["customerName"] for o in with_header.json()["items"]] == ["Léa Martin"]
    assert without_header.json() == with_header.json()


async def test_a_session_never_reaches_another_tenant(
    client: httpx.AsyncClient, tenant: TenantCredentials, other_tenant: TenantCredentials
) -> None:
    await sign_in(client, tenant.api_key)

    response = await client.get("/api/v1/orders", headers={"X-Tenant-Id": other_tenant.id})

    assert response.status_code == 403
    assert response.json()["code"] == "tenant_forbidden"


@pytest.mark.parametrize("route", CHANGES)
async def test_every_change_made_with_the_cookie_needs_the_csrf_token(
    client: httpx.AsyncClient, tenant: TenantCredentials, route: tuple[str, str]
) -> None:
    csrf = await sign_in(client, tenant.api_key)
    request = ROUTE_REQUESTS[route]

    without = await send_route_request(client, request, uuid.uuid4(), {})
    forged = await send_route_request(client, request, uuid.uuid4(), {CSRF: "forged-" + csrf})
    not_ascii = await send_route_request(client, request, uuid.uuid4(), {CSRF: "jeton-é".encode()})
    with_token = await send_route_request(client, request, uuid.uuid4(), {CSRF: csrf})

    assert without.status_code == forged.status_code == not_ascii.status_code == 403
    assert without.json()["code"] == forged.json()["code"] == "csrf_token_invalid"
    assert with_token.status_code not in (401, 403), with_token.text


async def test_the_csrf_token_changes_an_order_with_the_cookie(
    client: httpx.AsyncClient, session: AsyncSession, tenant: TenantCredentials
) -> None:
    await upsert_orders(session, tenant.id, [order_record()])
    csrf = await sign_in(client, tenant.api_key)
    [order] = (await client.get("/api/v1/orders")).json()["items"]

    changed = await client.patch(
        f"/api/v1/orders/{order['id']}", json={"savStatus": "OPEN"}, headers={CSRF: csrf}
    )

    assert changed.status_code == 200
    assert changed.json()["savStatus"] == "OPEN"


async def test_the_api_key_needs_no_csrf_token_even_beside_a_cookie(
    client: httpx.AsyncClient, session: AsyncSession, tenant: TenantCredentials
) -> None:
    await upsert_orders(session, tenant.id, [order_record()])
    await sign_in(client, tenant.api_key)
    [order] = (await client.get("/api/v1/orders")).json()["items"]

    changed = await client.patch(
        f"/api/v1/orders/{order['id']}", json={"savStatus": "OPEN"}, headers=tenant.headers
    )

    assert changed.status_code == 200


async def test_revoking_the_key_ends_its_sessions(
    client: httpx.AsyncClient, session: AsyncSession, tenant: TenantCredentials
) -> None:
    await sign_in(client, tenant.api_key)

    await revoke_api_keys(session, tenant.id)
    response = await client.get("/api/v1/orders")

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


async def test_an_expired_session_is_refused(
    client: httpx.AsyncClient, session: AsyncSession, tenant: TenantCredentials
) -> None:
    await sign_in(client, tenant.api_key)

    await session.execute(
        text("UPDATE browser_sessions SET expires_at = now() WHERE tenant_id = :t"),
        {"t": tenant.id},
    )

    assert (await client.get("/api/v1/orders")).status_code == 401


async def test_a_forged_cookie_is_refused(client: httpx.AsyncClient) -> None:
    client.cookies.set("kb_session", "forged")

    response = await client.get("/api/v1/orders")

    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"


async def test_only_a_hash_of_the_session_is_stored(
    client: httpx.AsyncClient, session: AsyncSession, tenant: TenantCredentials
) -> None:
    await sign_in(client, tenant.api_key)
    cookie = client.cookies["kb_session"]

    stored = await session.scalar(
        text(
            "SELECT string_agg(row_to_json(s)::text, ' ') FROM browser_sessions s "
            "WHERE tenant_id = :t"
        ),
        {"t": tenant.id},
    )

    assert stored
    assert cookie not in stored

"""Inputs that cost nothing to refuse: a body over the limit is refused before it is read (by
its Content-Length, or at the chunk that passes the limit), and a body reaches the application
only from an authenticated sender. What the application read is counted at the ASGI boundary."""

from __future__ import annotations

import socket
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.routing import BaseRoute

from keybuzz.config import Settings
from keybuzz.http_limits import AuthenticatedBody
from keybuzz.orders.models import Order
from keybuzz.orders.service import upsert_orders
from tests.factories import TenantCredentials, order_record
from tests.fixtures.sessions import sign_in

PROBLEM = "application/problem+json"
LIMIT = 256 * 1024
CHUNK = 64 * 1024


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_body_bytes": LIMIT})


@dataclass
class CountedBody:
    """A request body sent chunk by chunk; ``read``: bytes the application asked for."""

    size: int
    read: int = 0

    async def chunks(self) -> AsyncIterator[bytes]:
        sent = 0
        while sent < self.size:
            chunk = b" " * min(CHUNK, self.size - sent)
            sent += len(chunk)
            self.read += len(chunk)
            yield chunk


async def _order_id(session: AsyncSession, tenant: TenantCredentials) -> str:
    record = order_record()
    await upsert_orders(session, tenant.id, [record])
    stored = select(Order.id).where(
        Order.tenant_id == tenant.id, Order.external_order_id == record.external_order_id
    )
    return str(await session.scalar(stored))


def _assert_too_large(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == "payload_too_large"


async def test_a_body_declared_over_the_limit_is_refused_before_a_byte_is_read(
    client: httpx.AsyncClient, session: AsyncSession, tenant: TenantCredentials
) -> None:
    order_id = await _order_id(session, tenant)
    body = CountedBody(100 * 1024 * 1024)
    response = await client.patch(
        f"/api/v1/orders/{order_id}",
        content=body.chunks(),
        headers={**tenant.headers, "Content-Length": str(body.size)},
    )
    _assert_too_large(response)
    assert body.read == 0


async def test_a_chunked_body_is_cut_at_the_chunk_that_passes_the_limit(
    client: httpx.AsyncClient, session: AsyncSession, tenant: TenantCredentials
) -> None:
    order_id = await _order_id(session, tenant)
    body = CountedBody(100 * 1024 * 1024)
    response = await client.patch(
        f"/api/v1/orders/{order_id}", content=body.chunks(), headers=tenant.headers
    )
    _assert_too_large(response)
    assert LIMIT < body.read <= LIMIT + CHUNK


async def test_the_sign_in_form_has_the_same_limit(client: httpx.AsyncClient) -> None:
    body = CountedBody(10 * 1024 * 1024)
    response = await client.post(
        "/orders/sign-in",
        content=body.chunks(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    _assert_too_large(response)
    assert body.read <= LIMIT + CHUNK


@pytest.mark.parametrize(
    "credentials",
    [{}, {"Authorization": "Bearer kb_made-up-key", "X-Tenant-Id": "ecomlg-001"}],
    ids=["no key", "unknown key"],
)
async def test_an_unauthenticated_body_is_refused_unread(
    client: httpx.AsyncClient,
    session: AsyncSession,
    tenant: TenantCredentials,
    credentials: dict[str, str],
) -> None:
    order_id = await _order_id(session, tenant)
    for method, path in [
        ("PATCH", f"/api/v1/orders/{order_id}"),
        ("POST", "/api/v1/orders/backfill"),
        ("POST", "/api/v1/marketplaces/amazon/oauth/start"),
    ]:
        body = CountedBody(LIMIT - 1)  # under the limit: refused for its sender alone
        response = await client.request(
            method,
            path,
            content=body.chunks(),
            headers={**credentials, "Content-Type": "application/json"},
        )
        assert response.status_code == 401, (path, response.text)
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["code"] == "unauthenticated"
        assert body.read == 0, path


async def test_a_body_sent_with_the_cookie_but_no_csrf_token_is_refused_unread(
    client: httpx.AsyncClient, session: AsyncSession, tenant: TenantCredentials
) -> None:
    order_id = await _order_id(session, tenant)
    await sign_in(client, tenant.api_key)
    body = CountedBody(LIMIT - 1)
    response = await client.patch(
        f"/api/v1/orders/{order_id}",
        content=body.chunks(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 403
    assert response.json()["code"] == "csrf_token_invalid"
    assert body.read == 0


async def test_a_body_from_an_authenticated_sender_is_read_and_served(
    client: httpx.AsyncClient, session: AsyncSession, tenant: TenantCredentials
) -> None:
    order_id = await _order_id(session, tenant)
    with_key = await client.patch(
        f"/api/v1/orders/{order_id}", json={"savStatus": "OPEN"}, headers=tenant.headers
    )
    assert with_key.status_code == 200, with_key.text
    assert with_key.json()["savStatus"] == "OPEN"

    csrf = await sign_in(client, tenant.api_key)
    with_cookie = await client.patch(
        f"/api/v1/orders/{order_id}", json={"savStatus": "RESOLVED"}, headers={"X-CSRF-Token": csrf}
    )
    assert with_cookie.status_code == 200, with_cookie.text
    assert with_cookie.json()["savStatus"] == "RESOLVED"

    invalid = await client.patch(
        f"/api/v1/orders/{order_id}", json={"savStatus": "nope"}, headers=tenant.headers
    )
    assert invalid.status_code == 422
    assert invalid.json()["errors"][0]["field"] == "savStatus"


def _api_routes(routes: Sequence[BaseRoute]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            if route.path.startswith("/api/"):
                yield route
        elif (included := getattr(route, "original_router", None)) is not None:
            yield from _api_routes(included.routes)  # FastAPI 0.16x keeps an included router


def test_every_api_route_that_takes_a_body_authenticates_first(app: FastAPI) -> None:
    with_body = [route for route in _api_routes(app.routes) if route.body_field is not None]
    assert with_body  # PATCH an order, POST a backfill, start OAuth
    assert all(isinstance(route, AuthenticatedBody) for route in with_body)


def test_the_openapi_documents_413_on_bodies_and_429_on_every_authenticated_operation(
    app: FastAPI,
) -> None:
    paths = app.openapi()["paths"]
    documented = [route for route in _api_routes(app.routes) if route.include_in_schema]
    for route in documented:
        for method in route.methods or ():
            responses = paths[route.path_format][method.lower()]["responses"]
            if route.body_field is not None:
                assert PROBLEM in responses["413"]["content"], (method, route.path)
            assert PROBLEM in responses["429"]["content"], (method, route.path)


# --- Over the network, as the issue measured it --------------------------------------------

HUNDRED_MB = 100 * 1024 * 1024


def _send_big_post(port: int, path: str, *, chunked: bool) -> tuple[int, int]:
    """POST 100 MB (declared, or chunked) without credentials, as fast as the server takes it;
    the answer's status and how many body bytes the server let in before answering."""
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    head += (
        "Transfer-Encoding: chunked\r\n\r\n" if chunked else f"Content-Length: {HUNDRED_MB}\r\n\r\n"
    )
    chunk = b" " * CHUNK
    framed = f"{CHUNK:x}\r\n".encode() + chunk + b"\r\n" if chunked else chunk
    sent = 0
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head.encode())
        answer = bytearray()

        def send_body() -> None:
            nonlocal sent
            try:
                while sent < HUNDRED_MB and not answer:
                    sock.sendall(framed)
                    sent += CHUNK
            except OSError:
                pass  # the server answered and closed the connection: nothing more to send

        sender = threading.Thread(target=send_body)
        sender.start()
        while b"\r\n" not in answer:
            received = sock.recv(65536)
            if not received:
                break
            answer += received
        sender.join()
    return int(answer.split(b" ", 2)[1]), sent


@pytest.mark.slow
def test_three_unauthenticated_100_mb_posts_cost_the_server_no_memory(
    fresh_database_url: str, tmp_path: Path
) -> None:
    """The issue's measure: three unauthenticated 100 MB POSTs took the API from 203 MB to
    795 MB. The server now answers each before reading it, and its memory stays where it was."""
    from tests.test_serve import served

    with served(fresh_database_url, tmp_path) as service:
        process = psutil.Process(service.process.pid)
        before = process.memory_info().rss
        answers = [
            _send_big_post(service.port, "/api/v1/orders/backfill", chunked=True),
            _send_big_post(service.port, "/api/v1/marketplaces/amazon/oauth/start", chunked=True),
            _send_big_post(service.port, "/api/v1/orders/backfill", chunked=False),
        ]
        grown = process.memory_info().rss - before
    assert [status for status, _ in answers] == [401, 401, 413]
    assert all(sent < HUNDRED_MB for _, sent in answers)  # answered before the body was in
    assert grown < 20 * 1024 * 1024, f"the server grew by {grown / 2**20:.0f} MB"

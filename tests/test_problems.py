from __future__ import annotations

import socket
import uuid
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DataError

from keybuzz.config import Settings
from keybuzz.problems import PROBLEM_JSON, register_error_handlers
from keybuzz.runtime import open_runtime
from tests.factories import TenantCredentials
from tests.fixtures.apps import api_client


def _app_refusing(error: Exception) -> FastAPI:
    app = FastAPI()
    register_error_handlers(app)

    @app.get("/refused")
    async def refused() -> None:
        raise error

    return app


async def test_a_value_postgresql_refuses_is_the_clients_problem_not_a_500() -> None:
    refused = psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
    app = _app_refusing(DataError("SELECT … WHERE q = %(q)s", {"q": "a\x00b"}, refused))

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as client:
        response = await client.get("/refused")

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "bad_request"
    assert "SELECT" not in response.text


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/api/v1/orders/0190a1b2-0000-7000-8000-000000000001", "GET, PATCH"),
        ("PUT", "/api/v1/orders", "DELETE, GET"),
        ("DELETE", "/api/v1/orders/backfill", "GET, POST"),
        ("PATCH", "/api/v1/orders/quarantine", "GET"),
        ("GET", "/api/v1/marketplaces/amazon", "DELETE"),
    ],
)
async def test_a_method_the_path_does_not_take_is_a_405_naming_all_it_takes(
    client: httpx.AsyncClient, tenant: TenantCredentials, method: str, path: str, allowed: str
) -> None:
    response = await client.request(method, path, headers=tenant.headers)

    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    assert response.headers["content-type"] == "application/problem+json"


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
    ]


async def test_every_problem_is_documented_as_problem_json(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()

    content_types = {
        (method, path, status): set(response.get("content", {}))
        for method, path, operation in _operations(spec)
        for status, response in operation["responses"].items()
        if int(status) >= 400
    }
    assert content_types
    assert {key for key, types in content_types.items() if types != {PROBLEM_JSON}} == set()
    assert "HTTPValidationError" not in spec["components"]["schemas"]


async def test_every_api_operation_documents_what_any_may_answer(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()

    for method, path, operation in _operations(spec):
        if not path.startswith("/api/"):
            continue
        expected = {"400", "401", "403", "422", "429", "503"}
        if "requestBody" in operation:
            expected.add("413")
        assert expected <= set(operation["responses"]), (method, path)
        assert "Retry-After" in operation["responses"]["429"]["headers"]
        assert "`rate_limited`" in operation["responses"]["429"]["description"]


async def test_an_api_key_goes_with_its_tenant_and_a_session_changes_with_its_csrf_token(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()

    orders = spec["paths"]["/api/v1/orders/{order_id}"]
    assert orders["get"]["security"] == [{"ApiKey": [], "TenantId": []}, {"BrowserSession": []}]
    assert orders["patch"]["security"] == [
        {"ApiKey": [], "TenantId": []},
        {"BrowserSession": [], "CsrfToken": []},
    ]


async def test_the_backfill_already_active_is_documented(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()

    responses = spec["paths"]["/api/v1/orders/backfill"]["post"]["responses"]
    assert {"200", "202", "409"} <= set(responses)
    assert "500" not in responses


# --- PostgreSQL down ----------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize(
    "path", ["/api/v1/orders", f"/api/v1/orders/{uuid.UUID(int=1)}", "/api/v1/marketplaces"]
)
async def test_with_postgresql_down_the_api_answers_503_not_500(
    settings: Settings, path: str
) -> None:
    down = f"postgresql://postgres@127.0.0.1:{_closed_port()}/keybuzz"
    headers = {"Authorization": "Bearer kb_anything", "X-Tenant-Id": "ecomlg-001"}

    async with open_runtime(settings, database_url=down) as runtime, api_client(runtime) as client:
        response = await client.get(path, headers=headers)

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "database_unavailable"
    assert str(make_url(down).port) not in response.text  # the log says where, not the client

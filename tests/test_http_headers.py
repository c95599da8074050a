from __future__ import annotations

import dataclasses

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.orders.service import upsert_orders
from keybuzz.runtime import Runtime
from tests.factories import TenantCredentials, order_record
from tests.fixtures.apps import api_client


@pytest.mark.parametrize("path", ["/api/v1/orders", "/api/v1/orders/not-an-id", "/api/v1/nowhere"])
async def test_every_api_answer_is_neither_cached_nor_sniffed(
    client: httpx.AsyncClient, session: AsyncSession, tenant: TenantCredentials, path: str
) -> None:
    await upsert_orders(session, tenant.id, [order_record()])

    response = await client.get(path, headers=tenant.headers)

    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_the_api_description_can_be_turned_off(
    runtime: Runtime, session: AsyncSession
) -> None:
    settings = runtime.settings.model_copy(update={"public_docs": False})
    private = dataclasses.replace(runtime, settings=settings)

    async with api_client(private, session) as client:
        answers = [(await client.get(path)).status_code for path in ("/docs", "/openapi.json")]
        ready = await client.get("/readyz")

    assert answers == [404, 404]
    assert ready.status_code == 200

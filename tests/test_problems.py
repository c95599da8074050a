from __future__ import annotations

import httpx
import psycopg
from fastapi import FastAPI
from sqlalchemy.exc import DataError

from keybuzz.problems import register_error_handlers


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

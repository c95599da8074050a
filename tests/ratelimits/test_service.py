"""Rate limits per API key and per tenant, shared by API processes through PostgreSQL.

Each test serves the API on a database of its own, committing as in production, with limits
low enough to meet and rates slow enough that no token comes back while it runs, or, for the
delays, rates whose tokens come due while it watches. Times are bounded from below only.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from sqlalchemy import event
from sqlalchemy.engine import Engine

from keybuzz.config import Settings
from keybuzz.db import libpq_url, transaction
from keybuzz.ratelimits.service import Limit
from keybuzz.runtime import Runtime, open_runtime
from keybuzz.tenants.service import issue_api_key, revoke_api_keys
from tests.factories import TenantCredentials, make_tenant
from tests.fixtures.apps import app_on
from tests.fixtures.limits import GENEROUS_LIMITS

PROBLEM = "application/problem+json"
SLOW = 0.001
"""Tokens per second: none comes back during a test."""
EARLY = 0.98
"""The process's clock against the database's: a token may seem due a hair early."""


def _settings(tmp_path: Path, **limits: Any) -> Settings:
    values = {**GENEROUS_LIMITS, **limits}
    return Settings(_env_file=None, data_dir=tmp_path / ".keybuzz", **values)  # type: ignore[call-arg, arg-type]


@asynccontextmanager
async def _serving(
    settings: Settings, url: str, address: str = "127.0.0.1"
) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    async with open_runtime(settings, database_url=url) as runtime:
        async with _client_from(app_on(runtime), address) as client:
            yield runtime, client


async def _tenant(runtime: Runtime, tenant_id: str) -> TenantCredentials:
    async with transaction(runtime.privileged_sessionmaker) as session:
        return await make_tenant(session, tenant_id)


async def _new_key(runtime: Runtime, tenant: TenantCredentials) -> TenantCredentials:
    async with transaction(runtime.privileged_sessionmaker) as session:
        return TenantCredentials(tenant.id, await issue_api_key(session, tenant.id))


async def _statuses(client: httpx.AsyncClient, tenant: TenantCredentials, count: int) -> list[int]:
    statuses = []
    for _ in range(count):
        response = await client.get("/api/v1/orders", headers=tenant.headers)
        statuses.append(response.status_code)
    return statuses


@contextmanager
def _statements() -> Iterator[list[str]]:
    """Every SQL statement any engine of this process sends meanwhile."""
    sent: list[str] = []

    def record(*args: Any) -> None:
        sent.append(str(args[2]))

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(Engine, "before_cursor_execute", record)


def _assert_rate_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == "rate_limited"
    retry_after = response.headers["Retry-After"]
    assert retry_after.isdigit()
    assert int(retry_after) >= 1


def test_a_lease_is_a_tenth_of_the_burst_or_of_a_second_of_the_rate() -> None:
    assert Limit(per_second=100, burst=200).lease == 10
    assert Limit(per_second=50, burst=100).lease == 5
    assert Limit(per_second=1000, burst=50).lease == 5
    assert Limit(per_second=SLOW, burst=20).lease == 1


async def test_a_key_past_its_burst_gets_429_with_retry_after(
    fresh_database_url: str, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, rate_limit_key_per_second=SLOW, rate_limit_key_burst=5)
    async with _serving(settings, fresh_database_url) as (runtime, client):
        tenant = await _tenant(runtime, "ecomlg-001")
        assert await _statuses(client, tenant, 5) == [200] * 5
        refused = await client.get("/api/v1/orders", headers=tenant.headers)
        _assert_rate_limited(refused)
        # The tenant's other key has a bucket of its own.
        other_key = await _new_key(runtime, tenant)
        assert await _statuses(client, other_key, 1) == [200]


async def test_a_noisy_tenant_leaves_the_others_alone(
    fresh_database_url: str, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, rate_limit_tenant_per_second=SLOW, rate_limit_tenant_burst=8)
    async with _serving(settings, fresh_database_url) as (runtime, client):
        noisy = await _tenant(runtime, "noisy-001")
        quiet = await _tenant(runtime, "quiet-002")
        statuses = await _statuses(client, noisy, 20)
        assert statuses == [200] * 8 + [429] * 12
        assert await _statuses(client, quiet, 8) == [200] * 8
        # The tenant's limit holds over all its keys.
        another_key = await _new_key(runtime, noisy)
        _assert_rate_limited(await client.get("/api/v1/orders", headers=another_key.headers))


async def test_two_processes_on_one_database_share_the_budget(
    fresh_database_url: str, tmp_path: Path
) -> None:
    burst = 20
    settings = _settings(tmp_path, rate_limit_tenant_per_second=SLOW, rate_limit_tenant_burst=burst)
    lease = Limit(SLOW, burst).lease
    async with (
        _serving(settings, fresh_database_url) as (first, first_client),
        _serving(settings, fresh_database_url) as (second, second_client),
    ):
        assert first.rate_limits is not second.rate_limits
        tenant = await _tenant(first, "ecomlg-001")
        both = await asyncio.gather(
            _statuses(first_client, tenant, 3 * burst), _statuses(second_client, tenant, 3 * burst)
        )
    served = [statuses.count(200) for statuses in both]
    assert all(count > 0 for count in served)  # each process served some of the budget...
    assert all(429 in statuses for statuses in both)  # ...and refused once it was spent
    # Within the budget plus one lease per process (it would be 2 x 20 if each kept its own).
    assert burst - 2 * lease <= sum(served) <= burst + 2 * lease + math.ceil(SLOW * 600)


async def test_the_limits_are_read_from_the_environment(
    fresh_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEYBUZZ_RATE_LIMIT_KEY_PER_SECOND", str(SLOW))
    monkeypatch.setenv("KEYBUZZ_RATE_LIMIT_KEY_BURST", "3")
    monkeypatch.setenv("KEYBUZZ_RATE_LIMIT_TENANT_BURST", "7")
    settings = Settings(_env_file=None, data_dir=tmp_path / ".keybuzz")  # type: ignore[call-arg]
    assert settings.rate_limit_enabled
    assert (settings.rate_limit_key_burst, settings.rate_limit_tenant_burst) == (3, 7)
    async with _serving(settings, fresh_database_url) as (runtime, client):
        tenant = await _tenant(runtime, "ecomlg-001")
        assert await _statuses(client, tenant, 4) == [200, 200, 200, 429]

    monkeypatch.setenv("KEYBUZZ_RATE_LIMIT_ENABLED", "false")
    off = Settings(_env_file=None, data_dir=tmp_path / ".keybuzz")  # type: ignore[call-arg]
    assert not off.rate_limit_enabled


async def test_turned_off_nothing_is_limited_nor_stored(
    fresh_database_url: str, tmp_path: Path
) -> None:
    settings = _settings(
        tmp_path,
        rate_limit_enabled=False,
        rate_limit_key_per_second=SLOW,
        rate_limit_key_burst=1,
        rate_limit_anonymous_per_second=SLOW,
        rate_limit_anonymous_burst=1,
    )
    async with _serving(settings, fresh_database_url) as (runtime, client):
        tenant = await _tenant(runtime, "ecomlg-001")
        assert await _statuses(client, tenant, 10) == [200] * 10
        unknown = TenantCredentials(tenant.id, "kb_unknown")
        assert await _statuses(client, unknown, 5) == [401] * 5
    with psycopg.connect(libpq_url(fresh_database_url)) as conn:
        assert conn.execute("SELECT count(*) FROM rate_limit_buckets").fetchone() == (0,)


async def test_a_client_over_its_limit_is_refused_without_a_database_round_trip(
    fresh_database_url: str, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, rate_limit_key_per_second=SLOW, rate_limit_key_burst=3)
    async with _serving(settings, fresh_database_url) as (runtime, client):
        tenant = await _tenant(runtime, "ecomlg-001")
        assert await _statuses(client, tenant, 4) == [200, 200, 200, 429]
        with _statements() as sent:
            assert await _statuses(client, tenant, 50) == [429] * 50
        assert sent == []


async def test_in_the_steady_state_a_request_costs_no_round_trip_for_its_limits(
    fresh_database_url: str, tmp_path: Path
) -> None:
    settings = _settings(
        tmp_path,
        rate_limit_key_per_second=1000,
        rate_limit_key_burst=1000,
        rate_limit_tenant_per_second=1000,
        rate_limit_tenant_burst=1000,
    )
    async with _serving(settings, fresh_database_url) as (runtime, client):
        tenant = await _tenant(runtime, "ecomlg-001")
        with _statements() as sent:
            assert await _statuses(client, tenant, 50) == [200] * 50
    takes = [statement for statement in sent if "rate_limit_buckets" in statement]
    assert len(takes) == 2  # one lease of 100 for the key, one for the tenant


async def test_refused_authentications_are_limited_per_address_without_the_database(
    fresh_database_url: str, tmp_path: Path
) -> None:
    settings = _settings(
        tmp_path, rate_limit_anonymous_per_second=SLOW, rate_limit_anonymous_burst=3
    )
    async with open_runtime(settings, database_url=fresh_database_url) as runtime:
        app = app_on(runtime)
        tenant = await _tenant(runtime, "ecomlg-001")
        guesses = [TenantCredentials(tenant.id, f"kb_guess-{n}") for n in range(3)]
        async with _client_from(app, "203.0.113.7") as attacker:
            for guess in guesses:
                response = await attacker.get("/api/v1/orders", headers=guess.headers)
                assert response.status_code == 401
            with _statements() as sent:
                refused = await attacker.get("/api/v1/orders", headers=guesses[0].headers)
                body = await attacker.post(
                    "/api/v1/orders/backfill", json={"days": 1}, headers=guesses[0].headers
                )
            _assert_rate_limited(refused)
            _assert_rate_limited(body)
            assert sent == []
        async with _client_from(app, "198.51.100.2") as neighbour:
            served = await neighbour.get("/api/v1/orders", headers=tenant.headers)
            assert served.status_code == 200


@pytest.mark.parametrize(
    "path",
    ["/api/v1/orders", "/api/v1/orders/quarantine"],
    ids=["read path", "request transaction"],
)
async def test_a_request_over_its_limit_waits_for_its_token_and_is_served(
    fresh_database_url: str, tmp_path: Path, path: str
) -> None:
    rate = 4.0
    settings = _settings(
        tmp_path,
        rate_limit_key_per_second=rate,
        rate_limit_key_burst=1,
        rate_limit_max_delay_seconds=1.0,
    )
    async with _serving(settings, fresh_database_url) as (runtime, client):
        tenant = await _tenant(runtime, "ecomlg-001")
        started = time.monotonic()
        assert (await client.get(path, headers=tenant.headers)).status_code == 200

        async def served_at() -> float:
            response = await client.get(path, headers=tenant.headers)
            assert response.status_code == 200, response.text
            return time.monotonic() - started

        # One token a quarter of a second: the next four come due within the maximum delay.
        times = sorted(await asyncio.gather(*(served_at() for _ in range(4))))
    for n, elapsed in enumerate(times, start=1):
        assert elapsed >= EARLY * n / rate


async def test_a_request_beyond_the_maximum_delay_is_refused_once_it_has_passed(
    fresh_database_url: str, tmp_path: Path
) -> None:
    delay = 0.3
    settings = _settings(
        tmp_path,
        rate_limit_key_per_second=SLOW,
        rate_limit_key_burst=1,
        rate_limit_max_delay_seconds=delay,
    )
    async with _serving(settings, fresh_database_url) as (runtime, client):
        tenant = await _tenant(runtime, "ecomlg-001")
        assert await _statuses(client, tenant, 1) == [200]
        for _ in range(2):  # asking the database, then from the process's memory
            sent = time.monotonic()
            refused = await client.get("/api/v1/orders", headers=tenant.headers)
            assert time.monotonic() - sent >= EARLY * delay
            _assert_rate_limited(refused)
        with _statements() as statements:
            sent = time.monotonic()
            _assert_rate_limited(await client.get("/api/v1/orders", headers=tenant.headers))
            assert time.monotonic() - sent >= EARLY * delay
        assert statements == []


async def test_delayed_requests_spend_their_tokens_across_processes(
    fresh_database_url: str, tmp_path: Path
) -> None:
    rate, burst, delay = 10.0, 5, 0.5
    settings = _settings(
        tmp_path,
        rate_limit_tenant_per_second=rate,
        rate_limit_tenant_burst=burst,
        rate_limit_max_delay_seconds=delay,
    )
    lease = Limit(rate, burst).lease
    async with (
        _serving(settings, fresh_database_url) as (first, first_client),
        _serving(settings, fresh_database_url) as (_, second_client),
    ):
        tenant = await _tenant(first, "ecomlg-001")
        started = time.monotonic()

        async def answered(client: httpx.AsyncClient) -> tuple[int, float]:
            response = await client.get("/api/v1/orders", headers=tenant.headers)
            return response.status_code, time.monotonic() - started

        answers = await asyncio.gather(
            *(answered(client) for client in (first_client, second_client) for _ in range(12))
        )
    served = sorted(elapsed for status, elapsed in answers if status == 200)
    refused = [elapsed for status, elapsed in answers if status == 429]
    assert len(served) + len(refused) == len(answers)
    assert served
    assert refused  # 24 at once are more than the burst and the delay's debt together
    assert all(elapsed >= EARLY * delay for elapsed in refused)
    # Served no sooner than the shared bucket had the token: the burst at once, then one per
    # 1/rate s, whichever process served it (one lease each of slack).
    for n, elapsed in enumerate(served, start=1):
        assert elapsed >= EARLY * (n - burst - 2 * lease) / rate


async def test_a_revoked_key_stops_taking_its_tenants_tokens(
    fresh_database_url: str, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, rate_limit_tenant_per_second=SLOW, rate_limit_tenant_burst=3)
    async with _serving(settings, fresh_database_url) as (runtime, client):
        tenant = await _tenant(runtime, "ecomlg-001")
        assert await _statuses(client, tenant, 1) == [200]
        async with transaction(runtime.privileged_sessionmaker) as session:
            await revoke_api_keys(session, tenant.id)
        # The first refusal took its token before the key was found revoked; no other does.
        assert await _statuses(client, tenant, 5) == [401] * 5
        assert (
            await client.get("/api/v1/orders/quarantine", headers=tenant.headers)
        ).status_code == 401
        new_key = await _new_key(runtime, tenant)
        assert await _statuses(client, new_key, 2) == [200, 429]


async def test_refused_authentications_past_the_budget_are_answered_after_the_delay(
    fresh_database_url: str, tmp_path: Path
) -> None:
    delay = 0.3
    settings = _settings(
        tmp_path,
        rate_limit_anonymous_per_second=SLOW,
        rate_limit_anonymous_burst=1,
        rate_limit_max_delay_seconds=delay,
    )
    async with _serving(settings, fresh_database_url) as (runtime, client):
        tenant = await _tenant(runtime, "ecomlg-001")
        guess = TenantCredentials(tenant.id, "kb_guess")
        assert await _statuses(client, guess, 1) == [401]
        sent = time.monotonic()
        _assert_rate_limited(await client.get("/api/v1/orders", headers=guess.headers))
        assert time.monotonic() - sent >= EARLY * delay


@asynccontextmanager
async def _client_from(app: FastAPI, address: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client

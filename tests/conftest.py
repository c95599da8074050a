"""Shared fixtures: a real PostgreSQL server, a migrated database, per-test transactions, the app.

The machine's PostgreSQL (127.0.0.1:5432) is used when it answers, else the embedded server.
Alembic runs once per session into a template database; tests run inside a transaction that is
rolled back, and tests that must commit get a fresh clone of the template. Under pytest-xdist
each worker is a session of its own: its own template and databases (random names), its own
embedded server if one is needed, its own OpenBao server.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from psycopg import sql
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from keybuzz.config import Settings
from keybuzz.db import create_engine, libpq_url, migrate, start_embedded_postgres
from keybuzz.runtime import Runtime, open_runtime
from keybuzz.worker import job_groups
from tests.factories import TenantCredentials, make_tenant
from tests.fixtures.apps import app_on
from tests.fixtures.limits import GENEROUS_LIMITS

pytest_plugins = [
    "tests.fixtures.tenant_scoping",
    "tests.fixtures.hygiene",
    "tests.fixtures.vault",
    "tests.fixtures.amazon",
]


def _local_server_answers(host: str = "127.0.0.1", port: int = 5432) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def server_url() -> str:
    """A PostgreSQL server URL (maintenance database), real, never mocked."""
    configured = os.environ.get("KEYBUZZ_TEST_SERVER_URL")
    if configured:
        return configured
    if _local_server_answers():
        return "postgresql://postgres@127.0.0.1:5432/postgres"
    # A data folder per xdist worker: two workers never start or stop one server between them.
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    folder = f"test-pgdata-{worker}" if worker else "test-pgdata"
    pgdata = Path(__file__).resolve().parents[1] / ".keybuzz" / folder
    return start_embedded_postgres(pgdata, "postgres")


def _admin(server: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(libpq_url(server), autocommit=True)


def _database_url(server: str, name: str) -> str:
    return make_url(server).set(database=name).render_as_string(hide_password=False)


def _create_database(server: str, name: str, template: str | None = None) -> None:
    statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
    with _admin(server) as conn:
        conn.execute(statement)


def _drop_database(server: str, name: str) -> None:
    with _admin(server) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="session")
def template_database(server_url: str) -> Iterator[str]:
    """A database migrated once by Alembic; the source of every test database."""
    name = f"kb_test_tpl_{uuid.uuid4().hex[:8]}"
    _create_database(server_url, name)
    migrate(_database_url(server_url, name))
    yield name
    _drop_database(server_url, name)


def _clone(server_url: str, template: str) -> str:
    name = f"kb_test_{uuid.uuid4().hex[:10]}"
    _create_database(server_url, name, template=template)
    return name


@pytest.fixture(scope="session")
def database_url(server_url: str, template_database: str) -> Iterator[str]:
    """The shared test database; tests use it inside rolled-back transactions."""
    name = _clone(server_url, template_database)
    yield _database_url(server_url, name)
    _drop_database(server_url, name)


@pytest.fixture
def fresh_database_url(server_url: str, template_database: str) -> Iterator[str]:
    """A migrated database of the test's own, for tests that commit.

    Before it is dropped, every row is searched for credentials (see fixtures/hygiene.py).
    """
    from tests.fixtures.hygiene import scan_database

    name = _clone(server_url, template_database)
    url = _database_url(server_url, name)
    yield url
    leaks = scan_database(url)
    _drop_database(server_url, name)
    assert not leaks, f"credentials stored in the database: {leaks[:3]}"


@pytest.fixture(scope="module")
def module_database_url(server_url: str, template_database: str) -> Iterator[str]:
    """A migrated database that a whole module's tests commit to (a service they share, as
    the browser tests do); scanned for credentials before it is dropped, as above."""
    from tests.fixtures.hygiene import scan_database

    name = _clone(server_url, template_database)
    url = _database_url(server_url, name)
    yield url
    leaks = scan_database(url)
    _drop_database(server_url, name)
    assert not leaks, f"credentials stored in the database: {leaks[:3]}"


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=5)
    yield engine
    await engine.dispose()


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session in a transaction that is rolled back after the test (commits are savepoints)."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        session = AsyncSession(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        try:
            yield session
        finally:
            await session.close()
            await transaction.rollback()


@pytest.fixture
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """The app's settings; in a test marked ``amazon``, pointed at the simulator."""
    if request.node.get_closest_marker("amazon") is not None:
        on_simulator: Settings = request.getfixturevalue("settings_on_simulator")
        return on_simulator
    return Settings(_env_file=None, data_dir=tmp_path / ".keybuzz", **GENEROUS_LIMITS)  # type: ignore[call-arg, arg-type]


@pytest.fixture
async def runtime(settings: Settings, engine: AsyncEngine) -> AsyncIterator[Runtime]:
    async with open_runtime(settings, engine=engine, jobs=job_groups()) as opened:
        yield opened


@pytest.fixture
def app(runtime: Runtime, session: AsyncSession) -> FastAPI:
    """The API on the test's runtime, each request inside the test's transaction."""
    return app_on(runtime, session)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
async def tenant(session: AsyncSession) -> TenantCredentials:
    return await make_tenant(session, "ecomlg-001")


@pytest.fixture
async def other_tenant(session: AsyncSession) -> TenantCredentials:
    return await make_tenant(session, "rival-002")

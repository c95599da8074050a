"""Row-level security, the second wall between tenants: the service runs as a role that sees a
tenant table's rows only for the tenant its transaction is bound to (migration 0009)."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from keybuzz.app import create_app
from keybuzz.cli import app as cli
from keybuzz.config import Settings
from keybuzz.db import (
    APP_ROLE,
    BIND_TENANT_SQL,
    TENANT_SETTING,
    DatabaseUrls,
    app_role_url,
    create_engine,
    create_sessionmaker,
    database_urls,
    libpq_url,
    transaction,
)
from keybuzz.orders.service import upsert_orders
from keybuzz.runtime import open_runtime
from keybuzz.simulator.server import SimulatorServer
from keybuzz.tenants.models import TenantId
from tests.factories import TenantCredentials, make_tenant, order_record
from tests.fixtures.amazon import Deployed
from tests.fixtures.limits import GENEROUS_LIMITS
from tests.fixtures.sessions import sign_in
from tests.fixtures.sync import backfill, settled_seller
from tests.fixtures.tenant_scoping import tenant_tables

ORDERS = "/api/v1/orders"

# Every table of the schema with a tenant_id column, as the catalog has it: a table added by a
# later migration is in it the moment it exists.
TENANT_TABLES = """
SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, pg_get_userbyid(c.relowner),
       coalesce((SELECT array_agg(p.polname::text ORDER BY p.polname) FROM pg_policy p
                 WHERE p.polrelid = c.oid
                   AND pg_get_expr(p.polqual, p.polrelid) LIKE '%current_setting(''app.tenant_id''%'
                   AND pg_get_expr(p.polwithcheck, p.polrelid)
                       LIKE '%current_setting(''app.tenant_id''%'), '{}')
FROM pg_class c
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
ORDER BY c.relname
"""


def _unguarded(cursor: psycopg.Cursor[Any]) -> list[str]:
    """The tenant tables without row-level security enabled, forced and tied to the tenant."""
    return [
        name
        for name, enabled, forced, _, policies in cursor.execute(TENANT_TABLES).fetchall()
        if not (enabled and forced and "tenant_isolation" in policies)
    ]


def _as_app(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(libpq_url(app_role_url(url)))


def test_the_app_role_is_no_superuser_bypasses_no_policy_and_owns_no_table(
    database_url: str,
) -> None:
    with _as_app(database_url) as conn:
        flags = conn.execute(
            "SELECT current_user, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb"
            " FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        owned = conn.execute(
            "SELECT count(*) FROM pg_class WHERE relowner = current_user::regrole"
            " AND relkind IN ('r', 'p', 'v', 'm', 'S')"
        ).fetchone()

    assert flags == (APP_ROLE, False, False, False, False)
    assert owned == (0,)


def test_every_tenant_table_has_row_level_security_enabled_and_forced(database_url: str) -> None:
    with psycopg.connect(libpq_url(database_url)) as conn:
        tables = conn.execute(TENANT_TABLES).fetchall()
        unguarded = _unguarded(conn.cursor())

    assert {name for name, *_ in tables} >= tenant_tables()  # every model's, at least
    assert unguarded == []
    assert {owner for *_, owner, _ in tables} != {APP_ROLE}


def test_a_new_tenant_table_without_row_level_security_is_caught(database_url: str) -> None:
    with psycopg.connect(libpq_url(database_url)) as conn:
        conn.execute("CREATE TABLE kb_forgotten (id int, tenant_id text)")
        conn.execute("CREATE TABLE kb_remembered (id int, tenant_id text)")
        conn.execute("SELECT keybuzz_isolate_tenant('kb_remembered')")
        unguarded = _unguarded(conn.cursor())
        conn.rollback()

    assert unguarded == ["kb_forgotten"]


@pytest.mark.amazon
async def test_with_no_tenant_bound_every_tenant_table_reads_no_row(
    deployed: Deployed, amazon: SimulatorServer, fresh_database_url: str
) -> None:
    settled_seller(amazon, 30)
    tenant = await deployed.tenant()
    job = await backfill(deployed, tenant, days=90)
    assert job["status"] == "SUCCEEDED"
    await sign_in(deployed.client, tenant.api_key)
    with psycopg.connect(libpq_url(fresh_database_url)) as owner:
        owner.execute(
            "INSERT INTO order_quarantine (tenant_id, marketplace, source, reason, payload)"
            " VALUES (%s, 'amazon', 'test', 'unreadable', '{}')",
            (tenant.id,),
        )
        owner.commit()
        tables = [row[0] for row in owner.execute(TENANT_TABLES)]
        as_owner = {t: owner.execute(f"SELECT count(*) FROM {t}").fetchone() for t in tables}

    with _as_app(fresh_database_url) as app:
        unbound = {t: app.execute(f"SELECT count(*) FROM {t}").fetchone() for t in tables}
        app.execute(BIND_TENANT_SQL, ("rival-002",))
        other = {t: app.execute(f"SELECT count(*) FROM {t}").fetchone() for t in tables}
        app.rollback()
        app.execute(BIND_TENANT_SQL, (tenant.id,))
        own = {t: app.execute(f"SELECT count(*) FROM {t}").fetchone() for t in tables}

    assert all(count != (0,) for count in as_owner.values()), as_owner
    assert unbound == dict.fromkeys(tables, (0,))
    assert other == dict.fromkeys(tables, (0,))
    assert own == as_owner


def test_a_cross_tenant_insert_or_move_is_refused_and_another_tenants_rows_are_not_found(
    fresh_database_url: str,
) -> None:
    with psycopg.connect(libpq_url(fresh_database_url)) as owner:
        for tenant in ("ecomlg-001", "rival-002"):
            owner.execute("INSERT INTO tenants (id, name) VALUES (%s, %s)", (tenant, tenant))
            owner.execute(
                "INSERT INTO api_keys (tenant_id, key_hash, prefix) VALUES (%s, %s, 'kb_x')",
                (tenant, f"hash-of-{tenant}"),
            )
        owner.commit()

    with _as_app(fresh_database_url) as app:
        app.execute(BIND_TENANT_SQL, ("ecomlg-001",))
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            app.execute(
                "INSERT INTO api_keys (tenant_id, key_hash, prefix)"
                " VALUES ('rival-002', 'planted', 'kb_y')"
            )
        app.rollback()
        app.execute(BIND_TENANT_SQL, ("ecomlg-001",))
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            app.execute("UPDATE api_keys SET tenant_id = 'rival-002'")
        app.rollback()
        app.execute(BIND_TENANT_SQL, ("ecomlg-001",))
        theirs = app.execute("DELETE FROM api_keys WHERE tenant_id = 'rival-002'")
        assert theirs.rowcount == 0
        app.rollback()
        app.execute(BIND_TENANT_SQL, ("ecomlg-001",))
        revoked = app.execute("UPDATE api_keys SET revoked_at = now() RETURNING tenant_id")
        assert revoked.fetchall() == [("ecomlg-001",)]
        app.rollback()


async def test_the_app_built_by_the_runtime_connects_as_the_app_role(
    fresh_database_url: str, tmp_path: Path
) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    app = create_app(settings, database_url=fresh_database_url)
    async with app.router.lifespan_context(app):
        runtime = app.state.runtime
        async with runtime.engine.connect() as conn:
            app_user = await conn.scalar(text("SELECT current_user"))
        async with runtime.privileged_engine.connect() as conn:
            privileged_user = await conn.scalar(text("SELECT current_user"))

    assert app_user == APP_ROLE
    assert privileged_user == "postgres"


def test_production_names_both_roles_and_a_lone_url_is_the_owners(tmp_path: Path) -> None:
    app = "postgresql://keybuzz_app:app-pw@db.internal:5432/kb"
    owner = "postgresql://keybuzz_owner:owner-pw@db.internal:5432/kb"

    def settings(**urls: str) -> Settings:
        return Settings(_env_file=None, data_dir=tmp_path, **urls)  # type: ignore[call-arg]

    both = database_urls(settings(database_url=app, admin_database_url=owner))
    alone = database_urls(settings(database_url=owner))
    shown = settings(database_url=app, admin_database_url=owner).masked()

    assert both == DatabaseUrls(app=app, privileged=owner)
    assert alone == DatabaseUrls(
        app="postgresql://keybuzz_app@db.internal:5432/kb", privileged=owner
    )
    assert shown["admin_database_url"] == "postgresql://keybuzz_owner:********@db.internal:5432/kb"


def test_keybuzz_migrate_tells_the_roles_a_database_needs() -> None:
    shown = CliRunner().invoke(cli, ["migrate", "--help"], terminal_width=200)

    assert shown.exit_code == 0
    assert APP_ROLE in shown.output
    assert "KEYBUZZ_ADMIN_DATABASE_URL" in shown.output
    assert "NOBYPASSRLS" in shown.output
    assert "docs/database-roles.md" in shown.output


# --- Two tenants' requests through the real app on a pool of two connections ----------------


@pytest.fixture
async def two_tenants_stored(
    fresh_database_url: str,
) -> dict[TenantId, tuple[TenantCredentials, set[str]]]:
    engine = create_engine(fresh_database_url, pool_size=1)
    stored: dict[TenantId, tuple[TenantCredentials, set[str]]] = {}
    async with transaction(create_sessionmaker(engine)) as session:
        for tenant_id in ("ecomlg-001", "rival-002"):
            tenant = await make_tenant(session, tenant_id)
            records = [order_record() for _ in range(5)]
            await upsert_orders(session, tenant.id, records)
            stored[tenant.id] = (tenant, {r.external_order_id for r in records})
    await engine.dispose()
    return stored


async def test_interleaved_requests_of_two_tenants_on_two_connections_see_only_their_own(
    fresh_database_url: str,
    two_tenants_stored: dict[TenantId, tuple[TenantCredentials, set[str]]],
    tmp_path: Path,
) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path, db_pool_size=2, **GENEROUS_LIMITS)  # type: ignore[call-arg, arg-type]
    app_engine = create_engine(app_role_url(fresh_database_url), pool_size=2, max_overflow=0)
    owner_engine = create_engine(fresh_database_url, pool_size=1)
    at_checkin: list[tuple[int, str | None]] = []

    tenants = [credentials for credentials, _ in two_tenants_stored.values()]
    mixed: list[tuple[TenantId, int]] = []
    try:
        async with open_runtime(settings, engine=app_engine, privileged_engine=owner_engine) as rt:
            # The list is served by the read path's pool (keybuzz.reads), of db_pool_size: each
            # connection it gets back is asked what tenant it is still bound to.
            give_back = rt.read_pool.putconn

            async def putconn_reading_the_setting(connection: Any) -> None:
                cursor = await connection.execute(
                    f"SELECT pg_backend_pid(), current_setting('{TENANT_SETTING}', true)"
                )
                at_checkin.append(await cursor.fetchone())
                await give_back(connection)

            rt.read_pool.putconn = putconn_reading_the_setting  # type: ignore[method-assign]
            transport = httpx.ASGITransport(app=create_app(settings, runtime=rt))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                gate = asyncio.Semaphore(8)

                async def one(tenant: TenantCredentials) -> None:
                    async with gate:
                        response = await client.get(ORDERS, headers=tenant.headers)
                    assert response.status_code == 200, response.text
                    seen = {o["externalOrderId"] for o in response.json()["items"]}
                    own = two_tenants_stored[tenant.id][1]
                    mixed.append((tenant.id, len(seen - own)))
                    assert seen == own

                await asyncio.gather(
                    *(one(t) for t in itertools.islice(itertools.cycle(tenants), 1000))
                )
            pids = {pid for pid, _ in at_checkin}
    finally:
        await app_engine.dispose()
        await owner_engine.dispose()

    assert len(mixed) == 1000
    assert sum(other for _, other in mixed) == 0
    assert len(at_checkin) >= 1000
    assert len(pids) <= 2
    assert {setting for _, setting in at_checkin} <= {None, ""}

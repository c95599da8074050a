"""The tenant-scoping guard (tests/fixtures/tenant_scoping.py) fails what it must, and only that."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, or_, select, text, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.db import create_engine, cross_tenant, libpq_url, raw_connection
from keybuzz.orders.models import Order, OrderItem
from keybuzz.orders.repository import get_order
from keybuzz.tenants.models import ApiKey
from tests.factories import TenantCredentials
from tests.fixtures.tenant_scoping import TENANT_TABLES, TenantScopingGuard, problems_in

REPO = Path(__file__).resolve().parents[1]


def test_every_table_with_a_tenant_id_is_guarded() -> None:
    assert {
        "orders",
        "order_items",
        "marketplace_connections",
        "oauth_states",
        "api_keys",
        "backfill_jobs",
        "tenant_secrets",
    } <= TENANT_TABLES
    assert "tenants" not in TENANT_TABLES


UNSCOPED = {
    "by id only": "SELECT orders.id FROM orders WHERE orders.id = %(id_1)s::UUID",
    "no WHERE": "SELECT count(*) FROM order_items",
    "under OR": "SELECT 1 FROM orders WHERE orders.tenant_id = %(t)s OR true",
    "OR in parentheses": "SELECT 1 FROM orders WHERE x = 1 AND (orders.tenant_id = %s OR true)",
    "under NOT": "SELECT 1 FROM orders WHERE NOT orders.tenant_id = %s",
    "not equal": "SELECT 1 FROM marketplace_connections c WHERE c.tenant_id != %s",
    "compared to itself": "SELECT 1 FROM orders o WHERE o.tenant_id = o.tenant_id",
    "another table's tenant": "SELECT 1 FROM orders o, order_items i WHERE o.tenant_id = %s",
    "joined without it": (
        "SELECT 1 FROM orders o JOIN order_items i ON i.order_id = o.id WHERE o.tenant_id = %s"
    ),
    "uncorrelated subquery": (
        "SELECT o.id, (SELECT count(*) FROM order_items i WHERE i.order_id = o.id) "
        "FROM orders o WHERE o.tenant_id = %s"
    ),
    "IN over an unscoped read": (
        "SELECT 1 FROM orders WHERE orders.tenant_id IN (SELECT tenant_id FROM backfill_jobs)"
    ),
    "update by id": "UPDATE orders SET sav_status = %(s)s WHERE orders.id = %(id)s",
    "delete with USING": (
        "DELETE FROM order_items i USING orders o WHERE i.order_id = o.id AND o.tenant_id = %s"
    ),
    "insert without tenant_id": "INSERT INTO order_items (order_id, sku) VALUES (%s, %s)",
    "copy out": "COPY orders TO STDOUT",
    "copy in without tenant_id": "COPY order_items (order_id, sku) FROM STDIN",
    "truncate": "TRUNCATE orders",
    "mark without a reason": "SELECT 1 FROM api_keys WHERE key_hash = %s /* cross-tenant */",
    "quoted and aliased": 'SELECT json_agg(t) FROM "tenant_secrets" t',
    "in a CTE": (
        "WITH gone AS (DELETE FROM oauth_states WHERE expires_at < now() RETURNING id) "
        "SELECT count(*) FROM gone"
    ),
}

SCOPED = {
    "equality": "SELECT 1 FROM orders WHERE orders.tenant_id = %(t)s AND orders.id = %(id)s",
    "IN": "SELECT 1 FROM orders WHERE orders.tenant_id IN (%s, %s)",
    "= ANY": "SELECT 1 FROM orders o WHERE o.tenant_id = ANY(%s)",
    "unqualified, one table": "UPDATE backfill_jobs SET status = %s WHERE tenant_id = %s",
    "in a tuple": "SELECT 1 FROM orders o WHERE (o.tenant_id, o.id) IN ((%s, %s))",
    "correlated subquery": (
        "SELECT o.id, (SELECT count(*) FROM order_items i WHERE i.order_id = o.id "
        "AND i.tenant_id = o.tenant_id) FROM orders o WHERE o.tenant_id = %s"
    ),
    "join on tenant": (
        "SELECT 1 FROM orders o JOIN order_items i ON i.order_id = o.id "
        "AND i.tenant_id = o.tenant_id WHERE o.tenant_id = %s"
    ),
    "join using tenant": (
        "SELECT 1 FROM orders o JOIN order_items i USING (tenant_id) WHERE o.tenant_id = %s"
    ),
    "insert with tenant_id": "INSERT INTO order_items (tenant_id, order_id) VALUES (%s, %s)",
    "insert from a stage": (
        "INSERT INTO orders AS o (tenant_id, marketplace) SELECT %(t)s, s.marketplace "
        "FROM kb_stage_orders s ON CONFLICT (tenant_id, marketplace) DO UPDATE "
        "SET marketplace = EXCLUDED.marketplace WHERE EXCLUDED.x > o.x RETURNING o.id"
    ),
    "a temporary table named alike": "SELECT * FROM kb_stage_orders",
    "no tenant table": "SELECT count(*) FROM procrastinate_jobs WHERE queue_name = %s",
    "percent escaped": "SELECT 1 FROM orders WHERE orders.tenant_id = %s AND x LIKE 'a%%'",
    "marked": "SELECT /* cross-tenant: an operator's count */ count(*) FROM orders",
}


@pytest.mark.parametrize("statement", UNSCOPED.values(), ids=UNSCOPED.keys())
def test_statements_that_forget_their_tenant_are_violations(statement: str) -> None:
    assert problems_in(statement)


@pytest.mark.parametrize("statement", SCOPED.values(), ids=SCOPED.keys())
def test_statements_scoped_or_marked_are_not(statement: str) -> None:
    assert problems_in(statement) == ()


def test_sql_it_cannot_parse_fails_closed() -> None:
    assert "cannot parse" in problems_in("SELECT FROM orders WHERE (((")[0]


def test_each_problem_names_the_table_and_what_was_done() -> None:
    [problem] = problems_in(UNSCOPED["update by id"])
    assert problem.startswith("updates orders without an equality or IN on orders.tenant_id")
    [problem] = problems_in(UNSCOPED["insert without tenant_id"])
    assert problem == "writes rows into order_items without writing tenant_id"


# --- Through the drivers: what the service really sends -----------------------------------------


async def test_sqlalchemy_statements_are_checked(
    session: AsyncSession, tenant: TenantCredentials, tenant_scoping: TenantScopingGuard
) -> None:
    order_id = uuid.uuid4()
    with tenant_scoping.caught() as caught:
        await session.execute(select(Order).where(Order.id == order_id))
        await session.execute(select(Order).where(or_(Order.tenant_id == tenant.id, true())))
        await session.execute(update(Order).where(Order.id == order_id).values(carrier="La Poste"))

    assert [violation.problem.split(" without")[0] for violation in caught] == [
        "reads orders",
        "reads orders",
        "updates orders",
    ]
    assert all("tests/test_tenant_scoping.py" in violation.origin[-1] for violation in caught)


async def test_raw_psycopg_statements_are_checked(
    session: AsyncSession, tenant_scoping: TenantScopingGuard
) -> None:
    connection = await raw_connection(session)
    with tenant_scoping.caught() as caught:
        await connection.execute("SELECT count(*) FROM orders")
        async with connection.cursor() as cursor:
            await cursor.executemany(
                "UPDATE order_items SET quantity = %s WHERE id = %s", [(1, uuid.uuid4())]
            )
            async with cursor.copy("COPY tenant_secrets TO STDOUT") as copy:
                async for _ in copy:
                    pass

    assert [violation.problem.split(" without")[0] for violation in caught] == [
        "reads orders",
        "updates order_items",
        "copies every tenant's rows out of tenant_secrets (COPY ... TO)",
    ]


async def test_statements_of_any_engine_are_checked(
    database_url: str, tenant_scoping: TenantScopingGuard
) -> None:
    """An engine of its own, as ``open_runtime`` makes for tests that commit."""
    engine = create_engine(database_url, pool_size=1)
    try:
        with tenant_scoping.caught() as caught:
            async with engine.connect() as connection:
                await connection.execute(select(func.count()).select_from(ApiKey))
    finally:
        await engine.dispose()

    assert [violation.problem.split(" without")[0] for violation in caught] == ["reads api_keys"]


async def test_scoped_correlated_and_marked_statements_pass(
    session: AsyncSession, tenant: TenantCredentials, tenant_scoping: TenantScopingGuard
) -> None:
    items = (
        select(func.count())
        .where(OrderItem.order_id == Order.id, OrderItem.tenant_id == Order.tenant_id)
        .scalar_subquery()
    )
    with tenant_scoping.caught() as caught:
        await session.execute(select(Order.id, items).where(Order.tenant_id == tenant.id))
        await get_order(session, tenant.id, uuid.uuid4())
        await session.execute(
            cross_tenant(select(func.count()).select_from(Order), "a test of the mark: here")
        )
        await session.execute(text("SELECT count(*) FROM orders /* cross-tenant: a test */"))

    assert caught == []


def test_a_mark_needs_a_reason() -> None:
    with pytest.raises(ValueError, match="reason"):
        cross_tenant(select(Order.id), " ")
    with pytest.raises(ValueError, match="reason"):
        cross_tenant(select(Order.id), "closes the comment */ early")


# --- The whole loop: a violation fails the test that sent it -----------------------------------

INNER_TEST = """
import asyncio
import os

import psycopg


def test_a_statement_that_forgets_its_tenant() -> None:
    async def main() -> None:
        async with await psycopg.AsyncConnection.connect(os.environ["GUARD_DATABASE"]) as conn:
            try:
                await conn.execute("SELECT * FROM orders WHERE id = %s", ("not-a-uuid",))
            except Exception:
                pass  # swallowed: the guard must fail the test all the same

    asyncio.run(main())


def test_a_scoped_statement() -> None:
    async def main() -> None:
        async with await psycopg.AsyncConnection.connect(os.environ["GUARD_DATABASE"]) as conn:
            await conn.execute("SELECT * FROM orders WHERE tenant_id = %s", ("ecomlg-001",))

    asyncio.run(main())
"""


@pytest.mark.slow
def test_a_violation_fails_the_test_that_sent_it(database_url: str, tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["tests.fixtures.tenant_scoping"]\n')
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(INNER_TEST))
    env = {**os.environ, "PYTHONPATH": str(REPO), "GUARD_DATABASE": libpq_url(database_url)}

    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )

    assert "2 passed, 1 error" in run.stdout, run.stdout + run.stderr
    assert "ERROR at teardown of test_a_statement_that_forgets_its_tenant" in run.stdout
    assert "reads orders without an equality or IN on orders.tenant_id" in run.stdout
    assert "test_inner.py:12 in main" in run.stdout  # the line that sent it

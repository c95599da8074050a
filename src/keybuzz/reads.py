"""Reads in one round trip: the hot read routes (the order list, an order, its timeline) send
their whole transaction to PostgreSQL at once through psycopg's pipeline mode.

One request is one transaction, sent as one batch of messages followed by one Sync::

    BEGIN
    <the credential check, which also sets app.tenant_id>   (keybuzz.tenants.service)
    <the query, whose result is the answer's JSON>          (e.g. keybuzz.orders.json_reads)
    COMMIT

The credential check is ``SELECT ..., set_config('app.tenant_id', <the credential's tenant>,
true) FROM <the key or session lookup>``: the tenant setting (what row-level security reads)
travels in the same statement as the check, so it costs no round trip of its own, and it is set
only to a tenant the credential proves. Each query is also gated on that setting equal to the
tenant it reads, so nothing is computed for a credential that failed.

A request that names no tenant (a browser's session cookie without ``X-Tenant-Id``) learns it
from the check first: two round trips, one transaction.

``ReadPool`` is a psycopg pool on the runtime's own database URL and role (the runtime opens it
beside the SQLAlchemy engine), so a change of role follows. Tests run the same code on their own
transaction's connection (``Reads.inside``), between a savepoint and its release.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import AsyncConnection, AsyncCursor
from psycopg.abc import Buffer
from psycopg.adapt import Loader
from psycopg_pool import AsyncConnectionPool

from keybuzz.db import libpq_url

Row = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Sql:
    """One statement and its named parameters (``%(name)s``)."""

    text: str
    params: Mapping[str, Any]


class _JsonAsBytes(Loader):
    """``json`` values as the bytes PostgreSQL sent: the read path forwards them, never parses."""

    def load(self, data: Buffer) -> bytes:
        return bytes(data)


BUSY_POOL_WAIT = 30.0
"""Seconds a read waits for one of the pool's connections while all are busy."""
EMPTY_POOL_WAIT = 5.0
"""Seconds a read waits when the pool holds no connection at all (PostgreSQL unreachable, or
the very first reads): then 503 ``database_unavailable`` comes quickly, while psycopg's pool
keeps trying to connect."""


def open_read_pool(database_url: str, *, size: int) -> AsyncConnectionPool[Any]:
    """A pool of ``size`` autocommit connections for ``Reads``, opened empty: connections are
    made on first use (tests' runtimes that never read pay nothing)."""
    return AsyncConnectionPool(
        libpq_url(database_url),
        kwargs={"autocommit": True, "options": "-c timezone=UTC"},
        min_size=0,
        max_size=size,
        open=False,
        timeout=BUSY_POOL_WAIT,
        name="keybuzz-reads",
    )


def _given(
    connection: AsyncConnection[Any],
) -> Callable[[], AbstractAsyncContextManager[AsyncConnection[Any]]]:
    @asynccontextmanager
    async def connect() -> AsyncIterator[AsyncConnection[Any]]:
        yield connection

    return connect


class Reads:
    """Runs a request's credential check and query in one transaction and one round trip."""

    def __init__(
        self,
        connect: Callable[[], AbstractAsyncContextManager[AsyncConnection[Any]]],
        *,
        begin: str,
        commit: str,
        rollback: str,
    ) -> None:
        self._connect = connect
        self._begin = begin.encode()
        self._commit = commit.encode()
        self._rollback = rollback.encode()

    @classmethod
    def on_pool(cls, pool: AsyncConnectionPool[Any]) -> Reads:
        def connect() -> AbstractAsyncContextManager[AsyncConnection[Any]]:
            empty = pool.get_stats().get("pool_size", 0) == 0
            return pool.connection(timeout=EMPTY_POOL_WAIT if empty else BUSY_POOL_WAIT)

        return cls(connect, begin="BEGIN", commit="COMMIT", rollback="ROLLBACK")

    @classmethod
    def on_connection(cls, connection: AsyncConnection[Any]) -> Reads:
        """On one autocommit connection, as the pool's are."""
        return cls(_given(connection), begin="BEGIN", commit="COMMIT", rollback="ROLLBACK")

    @classmethod
    def inside(cls, connection: AsyncConnection[Any]) -> Reads:
        """On a connection already in a transaction (a test's): a savepoint stands for it."""
        return cls(
            _given(connection),
            begin="SAVEPOINT keybuzz_read",
            commit="RELEASE SAVEPOINT keybuzz_read",
            rollback="ROLLBACK TO SAVEPOINT keybuzz_read; RELEASE SAVEPOINT keybuzz_read",
        )

    async def run(
        self, check: Sql, query: Callable[[str], Sql] | None, tenant: str | None
    ) -> tuple[str | None, list[Row]]:
        """The tenant ``check`` found (``None``: the credential is not valid) and the rows of
        ``query(tenant)``; ``tenant`` is the one the request names, ``None`` to take the
        credential's (one more round trip). Without ``query``, only the check."""
        async with self._connect() as connection:
            try:
                return await self._run(connection, check, query, tenant)
            except BaseException:
                # A broken connection cannot roll back; the pool then discards it.
                with suppress(psycopg.Error):
                    await connection.execute(self._rollback)
                raise

    async def _run(
        self,
        connection: AsyncConnection[Any],
        check: Sql,
        query: Callable[[str], Sql] | None,
        tenant: str | None,
    ) -> tuple[str | None, list[Row]]:
        found: str | None = None
        rows: list[Row] = []
        query_cursor: AsyncCursor[Any] | None = None
        async with connection.pipeline() as pipeline:
            await connection.execute(self._begin)
            check_cursor = await connection.execute(check.text.encode(), check.params)
            if query is not None and tenant is None:
                await pipeline.sync()
                found_row = await check_cursor.fetchone()
                tenant = found = found_row[0] if found_row is not None else None
            if query is not None and tenant is not None:
                query_cursor = connection.cursor()
                query_cursor.adapters.register_loader("json", _JsonAsBytes)
                statement = query(tenant)
                await query_cursor.execute(statement.text.encode(), statement.params)
            await connection.execute(self._commit)
        if found is None:
            found_row = await check_cursor.fetchone()
            found = found_row[0] if found_row is not None else None
        if query_cursor is not None:
            rows = await query_cursor.fetchall()
        return found, rows

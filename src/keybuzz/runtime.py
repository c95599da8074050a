"""Long-lived resources shared by the API, the job worker and CLI commands.

One ``Runtime`` per process: the database engines (the app role's, and the owner's for the
privileged path), the secret store backend, KeyBuzz's SP-API application (its HTTP client and
every connection's rate-limit state), the job queue, and the API's own rate limits (this
process's leases, on a pool of their own, opened on first use). The
entry points open it (the API's lifespan, ``keybuzz worker``, a CLI command) and hand each
service only the parts it uses; the worker hands it to every job.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import procrastinate
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from keybuzz.amazon.client import SpApiApp
from keybuzz.amazon.config import SpApiConfig
from keybuzz.amazon.registry import ConnectionRegistry
from keybuzz.config import Settings
from keybuzz.db import DatabaseUrls, create_engine, create_sessionmaker, database_urls
from keybuzz.jobs import JobGroup, create_job_app
from keybuzz.ratelimits.service import RateLimiter
from keybuzz.reads import open_read_pool
from keybuzz.secrets import SecretBackend, open_secret_backend

AMAZON_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
RUNTIME_CONTEXT_KEY = "runtime"


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    """The app role's: every tenant row behind row-level security; a transaction sees its
    tenant's rows once bound (``keybuzz.db.bind_tenant``, ``tenant_transaction``)."""
    privileged_engine: AsyncEngine
    privileged_sessionmaker: async_sessionmaker[AsyncSession]
    """The owner's: the few deliberate cross-tenant units of work (the periodic jobs that look
    at every tenant). ``grep -rn privileged_sessionmaker src`` lists them."""
    secrets: SecretBackend
    amazon: SpApiApp
    jobs: procrastinate.App
    rate_limits: RateLimiter
    read_pool: AsyncConnectionPool[Any]
    """The read path's connections (``keybuzz.reads``): the engine's URL and role."""


def spapi_config(settings: Settings) -> SpApiConfig:
    """What the Amazon client needs of the settings (``KEYBUZZ_LWA_*``, ``KEYBUZZ_SPAPI_*``...)."""
    return SpApiConfig(
        lwa_client_id=settings.lwa_client_id,
        lwa_client_secret=settings.lwa_client_secret,
        application_id=settings.spapi_application_id,
        app_draft=settings.spapi_app_draft,
        sandbox=settings.spapi_sandbox,
        spapi_endpoint=settings.spapi_endpoint,
        lwa_token_url=settings.lwa_token_url,
        seller_central_url=settings.seller_central_url,
        timeout_seconds=settings.spapi_timeout_seconds,
    )


def engine_url(engine: AsyncEngine) -> str:
    return engine.url.render_as_string(hide_password=False)


@asynccontextmanager
async def open_runtime(
    settings: Settings,
    *,
    database_url: str | DatabaseUrls | None = None,
    engine: AsyncEngine | None = None,
    privileged_engine: AsyncEngine | None = None,
    jobs: Iterable[JobGroup] = (),
) -> AsyncIterator[Runtime]:
    """Open every resource; close what it opened. ``database_url``: the owner's URL, the app
    role's derived from it (``keybuzz.db.database_urls``), or both. Give ``engine`` to share an
    existing one (``privileged_engine``, default the same); ``jobs``, the task groups this
    process's worker may run (``keybuzz.worker.job_groups``)."""
    owned_engines: list[AsyncEngine] = []
    if engine is None:
        assert database_url is not None, "give database_url or engine"
        urls = (
            database_url
            if isinstance(database_url, DatabaseUrls)
            else database_urls(settings, database_url)
        )
        engine = create_engine(urls.app, pool_size=settings.db_pool_size)
        owned_engines.append(engine)
        if privileged_engine is None:
            # A few cross-tenant units of work (periodic jobs), one at a time, on one connection
            # opened when first needed: the app role's pool is where the work is.
            privileged_engine = create_engine(urls.privileged, pool_size=1, max_overflow=1)
            owned_engines.append(privileged_engine)
    if privileged_engine is None:
        privileged_engine = engine
    secrets = open_secret_backend(settings)
    http = httpx.AsyncClient(timeout=AMAZON_TIMEOUT, follow_redirects=False)
    rate_limits = RateLimiter(settings, engine_url(engine))
    read_pool = open_read_pool(engine_url(engine), size=settings.db_pool_size)
    await read_pool.open()
    try:
        yield Runtime(
            settings=settings,
            engine=engine,
            sessionmaker=create_sessionmaker(engine),
            privileged_engine=privileged_engine,
            privileged_sessionmaker=create_sessionmaker(privileged_engine),
            secrets=secrets,
            amazon=SpApiApp(http, spapi_config(settings), ConnectionRegistry()),
            jobs=create_job_app(engine_url(engine), jobs),
            rate_limits=rate_limits,
            read_pool=read_pool,
        )
    finally:
        await read_pool.close()
        await rate_limits.aclose()
        await http.aclose()
        await secrets.aclose()
        for owned in owned_engines:
            await owned.dispose()


def runtime_of(context: procrastinate.JobContext) -> Runtime:
    """The Runtime the worker hands to every job."""
    runtime: Runtime = context.additional_context[RUNTIME_CONTEXT_KEY]
    return runtime

"""Long-lived resources shared by the API, the job worker and CLI commands.

One ``Runtime`` per process: the database engine, the secret store backend, KeyBuzz's SP-API
application (its HTTP client and every connection's rate-limit state), and the job queue. The
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
from keybuzz.db import create_engine, create_sessionmaker
from keybuzz.jobs import JobGroup, create_job_app
from keybuzz.reads import open_read_pool
from keybuzz.secrets import SecretBackend, open_secret_backend

AMAZON_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
RUNTIME_CONTEXT_KEY = "runtime"


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    secrets: SecretBackend
    amazon: SpApiApp
    jobs: procrastinate.App
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
    database_url: str | None = None,
    engine: AsyncEngine | None = None,
    jobs: Iterable[JobGroup] = (),
) -> AsyncIterator[Runtime]:
    """Open every resource; close what it opened. Give ``engine`` to share an existing one;
    ``jobs``, the task groups this process's worker may run (``keybuzz.worker.job_groups``)."""
    owned_engine = None
    if engine is None:
        assert database_url is not None, "give database_url or engine"
        engine = owned_engine = create_engine(database_url, pool_size=settings.db_pool_size)
    secrets = open_secret_backend(settings)
    http = httpx.AsyncClient(timeout=AMAZON_TIMEOUT, follow_redirects=False)
    read_pool = open_read_pool(engine_url(engine), size=settings.db_pool_size)
    await read_pool.open()
    try:
        yield Runtime(
            settings=settings,
            engine=engine,
            sessionmaker=create_sessionmaker(engine),
            secrets=secrets,
            amazon=SpApiApp(http, spapi_config(settings), ConnectionRegistry()),
            jobs=create_job_app(database_url or engine_url(engine), jobs),
            read_pool=read_pool,
        )
    finally:
        await read_pool.close()
        await http.aclose()
        await secrets.aclose()
        if owned_engine is not None:
            await owned_engine.dispose()


def runtime_of(context: procrastinate.JobContext) -> Runtime:
    """The Runtime the worker hands to every job."""
    runtime: Runtime = context.additional_context[RUNTIME_CONTEXT_KEY]
    return runtime

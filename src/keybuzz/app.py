"""The FastAPI application: factory, lifespan-owned resources, routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from keybuzz import __version__, health
from keybuzz.config import Settings, get_settings
from keybuzz.db import database_urls
from keybuzz.deps import AUTH_PROBLEMS, security_requirements
from keybuzz.http_headers import ApiHeaders
from keybuzz.http_limits import RequestLimits
from keybuzz.marketplaces.routes import router as marketplaces_router
from keybuzz.orders.routes import quarantine_router
from keybuzz.orders.routes import router as orders_router
from keybuzz.problems import openapi_with_problems, register_error_handlers
from keybuzz.runtime import Runtime, open_runtime
from keybuzz.sync.routes import orders_router as order_refresh_router
from keybuzz.sync.routes import router as backfill_router
from keybuzz.ui.routes import router as pages_router
from keybuzz.worker import job_groups, worker_in_background


def create_app(
    settings: Settings | None = None,
    *,
    database_url: str | None = None,
    runtime: Runtime | None = None,
) -> FastAPI:
    """Build the app. Tests pass a ready ``runtime``; otherwise the lifespan opens one, on the
    app role (``database_url``: the owner's, the app role's derived from it)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if runtime is not None:
            yield
            return
        urls = database_urls(settings, database_url)
        groups = job_groups(heartbeat_seconds=settings.worker_heartbeat_seconds)
        async with open_runtime(settings, database_url=urls, jobs=groups) as opened:
            app.state.runtime = opened
            if settings.run_worker:
                async with worker_in_background(opened):
                    yield
            else:
                yield

    docs = settings.public_docs
    app = FastAPI(
        title="KeyBuzz Orders",
        version=__version__,
        description="Marketplace orders for the KeyBuzz helpdesk. Errors are RFC 9457 problems.",
        lifespan=lifespan,
        openapi_url="/openapi.json" if docs else None,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
    )
    app.add_middleware(RequestLimits, settings=settings)
    app.add_middleware(ApiHeaders)  # outermost: on the limits' own answers too
    if runtime is not None:
        app.state.runtime = runtime
    register_error_handlers(app)
    app.include_router(health.router)
    app.include_router(marketplaces_router)
    app.include_router(backfill_router)  # before the orders router: /orders/backfill is no id
    app.include_router(quarantine_router)  # nor is /orders/quarantine
    app.include_router(orders_router)
    app.include_router(order_refresh_router)
    app.include_router(pages_router)
    app.openapi = openapi_with_problems(  # type: ignore[method-assign]
        app, authentication=AUTH_PROBLEMS, security=security_requirements
    )
    return app

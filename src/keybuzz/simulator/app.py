"""The simulator's FastAPI app: LWA, Seller Central consent, SP-API, sandbox and ``/_sim/``."""

from __future__ import annotations

import logging
import uuid

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keybuzz.simulator import (
    routes_consent,
    routes_documents,
    routes_inspection,
    routes_lwa,
    routes_spapi,
)
from keybuzz.simulator.errors import LwaError, SpApiError
from keybuzz.simulator.gateway import RATE_LIMIT_HEADER, ConnectionDropped
from keybuzz.simulator.ratelimit import rate_header
from keybuzz.simulator.sandbox import sandbox_router
from keybuzz.simulator.settings import SimulatorSettings
from keybuzz.simulator.spec import UsagePlan
from keybuzz.simulator.state import Simulator

REQUEST_ID_HEADER = "x-amzn-RequestId"
INSPECTION_PREFIX = "/_sim"


class AmazonResponseMiddleware:
    """Adds ``x-amzn-RequestId`` to every answer and counts answers per operation."""

    def __init__(self, app: ASGIApp, simulator: Simulator) -> None:
        self.app = app
        self.simulator = simulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, object] = scope.setdefault("state", {})

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                self._count(state, message["status"])
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), str(uuid.uuid4()).encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_id)

    def _count(self, state: dict[str, object], status: int) -> None:
        """Counted before the answer leaves, so a client that reads the counters next sees it."""
        operation = state.get("operation")
        if isinstance(operation, str):
            fault = state.get("fault")
            self.simulator.count(operation, status, fault if isinstance(fault, str) else None)


class DroppedConnectionFilter(logging.Filter):
    """Keeps the server log quiet about connections the simulator drops on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], ConnectionDropped))


def _install_log_filter() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, DroppedConnectionFilter) for f in logger.filters):
        logger.addFilter(DroppedConnectionFilter())


async def spapi_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, SpApiError)
    headers = {}
    plan = getattr(request.state, "rate_plan", None)
    if error.status in (400, 404) and isinstance(plan, UsagePlan):
        headers[RATE_LIMIT_HEADER] = rate_header(plan)
    return JSONResponse(error.body(), error.status, headers)


async def lwa_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, LwaError)
    return JSONResponse(error.body(), error.status)


async def unknown_route(request: Request, error: Exception) -> Response:
    """Amazon answers an unknown path with a 403; ``/_sim/`` keeps FastAPI's answers."""
    assert isinstance(error, StarletteHTTPException)
    if request.url.path.startswith(INSPECTION_PREFIX) or error.status_code not in (404, 405):
        return JSONResponse({"detail": error.detail}, error.status_code, error.headers)
    body = SpApiError(
        403,
        "MissingAuthenticationToken",
        "Missing Authentication Token",
        f"No operation matches {request.method} {request.url.path}.",
    ).body()
    return JSONResponse(body, 403)


def create_app(settings: SimulatorSettings, simulator: Simulator | None = None) -> FastAPI:
    simulator = simulator or Simulator(settings)
    app = FastAPI(
        title="KeyBuzz SP-API simulator",
        docs_url=f"{INSPECTION_PREFIX}/docs",
        openapi_url=f"{INSPECTION_PREFIX}/openapi.json",
        redoc_url=None,
    )
    app.state.simulator = simulator
    app.add_middleware(AmazonResponseMiddleware, simulator=simulator)
    app.add_exception_handler(SpApiError, spapi_error)
    app.add_exception_handler(LwaError, lwa_error)
    app.add_exception_handler(StarletteHTTPException, unknown_route)
    for router in (
        routes_lwa.router,
        routes_consent.router,
        routes_spapi.router,
        routes_documents.router,
        routes_inspection.router,
        sandbox_router(),
    ):
        app.include_router(router)
    _install_log_filter()
    return app

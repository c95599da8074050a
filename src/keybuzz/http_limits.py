"""What a request may cost before it is served: its body's size, and who may send one.

``RequestLimits`` (ASGI middleware, every path) refuses a body over ``KEYBUZZ_MAX_BODY_BYTES``
with 413 before reading it: at once when its ``Content-Length`` says so, else as soon as the
chunks received pass the limit (nothing more is read). It also counts each client address's
refused authentications (401) in the process and answers 429 to an address past its budget
before the application or the database sees the request, once
``KEYBUZZ_RATE_LIMIT_MAX_DELAY_SECONDS`` has passed (so that a client asking again at once
cannot spin on refusals).

``AuthenticatedBody`` (the route class of the ``/api/`` routers): FastAPI reads and parses a
route's body before it solves the route's dependencies, the authentication among them; on a
route that takes a body, a request carrying one is first authenticated on its own (the same
dependency, in a short transaction of its own), and its body is read only then.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import FastAPI, Response
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keybuzz.config import Settings
from keybuzz.deps import CallerDep
from keybuzz.errors import KeyBuzzError, PayloadTooLarge, RateLimited
from keybuzz.problems import problem_response
from keybuzz.ratelimits.service import AddressLimits, anonymous_limit


class _BodyTooLarge(Exception):
    """Raised by the limited ``receive`` to stop whoever reads the body."""


def declared_length(scope: Scope) -> int | None:
    value = Headers(scope=scope).get("content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def carries_body(scope: Scope) -> bool:
    headers = Headers(scope=scope)
    return "transfer-encoding" in headers or declared_length(scope) not in (None, 0)


class RequestLimits:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.max_body_bytes = settings.max_body_bytes
        self.addresses = AddressLimits(anonymous_limit(settings))
        self.limit_addresses = settings.rate_limit_enabled
        self.max_delay = settings.rate_limit_max_delay_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = declared_length(scope)
        if length is not None and length > self.max_body_bytes:
            await self._refuse(scope, receive, send, self._too_large())
            return
        address = scope["client"][0] if scope.get("client") else "unknown"
        if self.limit_addresses and self.addresses.wait(address) > 0:
            await asyncio.sleep(self.max_delay)
            wait = self.addresses.wait(address)
            refused = RateLimited(wait, "Too many refused authentications from this address.")
            await self._refuse(scope, receive, send, refused)
            return

        received = 0
        exceeded = replaced = started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                raise _BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def watched_send(message: Message) -> None:
            nonlocal replaced, started
            if replaced:
                return
            if message["type"] == "http.response.start":
                if exceeded:  # whatever the reader made of the interruption, it is a 413
                    replaced = True
                    await self._refuse(scope, receive, send, self._too_large())
                    return
                started = True
                if message["status"] == 401 and self.limit_addresses:
                    self.addresses.charge(address)
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except _BodyTooLarge:
            if started:
                raise
            if not replaced:
                await self._refuse(scope, receive, send, self._too_large())

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"The request body may not exceed {self.max_body_bytes} bytes.")

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, error: KeyBuzzError) -> None:
        response = problem_response(error.to_problem(scope["path"]), error.headers)
        await response(scope, receive, send)


async def _caller_is_authenticated(caller: CallerDep) -> Response:
    return Response(status_code=204)


_PASSED = 204


class AuthenticatedBody(APIRoute):
    """A route whose request body is read only once its sender is authenticated."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        if self.body_field is None:
            return handle
        methods = sorted(self.methods or ())
        # One gate per app: it resolves the dependencies as that app does (its overrides).
        gates: weakref.WeakKeyDictionary[FastAPI, APIRoute] = weakref.WeakKeyDictionary()

        def gate_of(app: FastAPI) -> APIRoute:
            gate = gates.get(app)
            if gate is None:
                gate = gates[app] = APIRoute(
                    "/",
                    _caller_is_authenticated,
                    methods=methods,
                    include_in_schema=False,
                    dependency_overrides_provider=app,
                )
            return gate

        async def authenticate_then_handle(request: Request) -> Response:
            if carries_body(request.scope):
                refused = await _authenticate(gate_of(request.scope["app"]), request.scope)
                if refused is not None:
                    return refused
            return await handle(request)

        return authenticate_then_handle


async def _authenticate(gate: APIRoute, scope: Scope) -> Response | None:
    """Run the authentication alone, with no body to read; its answer if it refused."""
    held: list[Message] = []

    async def no_body() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def hold(message: Message) -> None:
        held.append(message)

    await gate.app(dict(scope), no_body, hold)
    start = held[0]
    if start["status"] == _PASSED:
        return None
    refused = Response(b"".join(m.get("body", b"") for m in held[1:]), status_code=start["status"])
    refused.raw_headers = list(start["headers"])
    return refused

"""What every SP-API call goes through: faults, the access token, the rate limit, the answer.

Routes declare ``call: Annotated[Call, Depends(spapi_call("v0.getOrders"))]`` and end with
``return call.respond(body)``, which adds Amazon's headers and any response-level fault.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from keybuzz.simulator.credentials import AccessToken
from keybuzz.simulator.errors import TOKEN_EXPIRED, internal_failure, quota_exceeded, unauthorized
from keybuzz.simulator.faults import Fault, FaultKind, break_first_order
from keybuzz.simulator.ratelimit import rate_header
from keybuzz.simulator.spec import UsagePlan
from keybuzz.simulator.state import Seller, Simulator

RATE_LIMIT_HEADER = "x-amzn-RateLimit-Limit"
SANDBOX_PREFIX = "/sandbox"


class ConnectionDropped(Exception):
    """Raised after part of a response went out, so that the server closes the socket."""


class DroppedResponse(Response):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        half = self.body[: len(self.body) // 2]
        await send({"type": "http.response.body", "body": half, "more_body": True})
        raise ConnectionDropped


def simulator_of(request: Request) -> Simulator:
    return cast(Simulator, request.app.state.simulator)


def json_bytes(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True, slots=True)
class Call:
    operation: str
    simulator: Simulator
    seller: Seller
    token: AccessToken
    now: int
    plan: UsagePlan
    fault: Fault

    def answer(self, produce: Callable[[], Any], status: int = 200) -> Response:
        """Run the operation under the simulator lock, then respond with its body."""
        with self.simulator.lock:
            body = produce()
        return self.respond(body, status)

    def respond(self, body: Any, status: int = 200) -> Response:
        if self.fault.kind is FaultKind.MALFORMED_ORDER and 200 <= status < 300:
            body = break_first_order(body)
        content = json_bytes(body)
        headers = {RATE_LIMIT_HEADER: rate_header(self.plan)}
        if self.fault.kind is FaultKind.DROP:
            return DroppedResponse(content, status, headers, media_type="application/json")
        if self.fault.kind is FaultKind.MALFORMED_JSON:
            content = content[: max(1, len(content) // 2)]
        return Response(content, status, headers, media_type="application/json")

    def granted_elements(self, method: str, path: str) -> frozenset[str]:
        """Data elements an RDT grants for this call; empty for a plain access token."""
        resources = self.token.resources or ()
        granted: set[str] = set()
        for resource in resources:
            if resource.covers(method, path):
                granted |= resource.data_elements
        return frozenset(granted)


def api_path(request: Request) -> str:
    path = request.url.path
    return path[len(SANDBOX_PREFIX) :] if path.startswith(SANDBOX_PREFIX + "/") else path


def spapi_call(operation: str) -> Callable[[Request], Awaitable[Call]]:
    async def dependency(request: Request) -> Call:
        simulator = simulator_of(request)
        request.state.operation = operation
        with simulator.lock:
            fault = simulator.faults.draw(operation)
        if fault.kind is not None:
            request.state.fault = fault.kind.value
        if fault.delay:
            await asyncio.sleep(fault.delay)
        with simulator.lock:
            return _admit(request, simulator, operation, fault)

    return dependency


def _admit(request: Request, simulator: Simulator, operation: str, fault: Fault) -> Call:
    if fault.kind in (FaultKind.INTERNAL_ERROR, FaultKind.SERVICE_UNAVAILABLE):
        raise internal_failure(int(fault.kind.value))
    now = simulator.clock.time()
    token = simulator.credentials.authenticate(request.headers.get("x-amz-access-token"), now)
    if fault.kind is FaultKind.EXPIRED_TOKEN:
        raise unauthorized(TOKEN_EXPIRED)
    if token.resources is not None and not any(
        resource.covers(request.method, api_path(request)) for resource in token.resources
    ):
        raise unauthorized("The restricted data token does not cover this resource.")
    seller = simulator.seller(token.refresh.seller_id)
    if not simulator.limiter.try_acquire(seller.seller_id, operation):
        raise quota_exceeded()
    plan = simulator.limiter.plan(operation)
    request.state.rate_plan = plan
    return Call(operation, simulator, seller, token, int(now), plan, fault)

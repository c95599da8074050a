"""Amazon's static sandbox, "request in, response out", under the ``/sandbox`` path prefix.

A client whose SP-API endpoint is ``{base_url}/sandbox`` talks to the sandbox host: every
operation of the vendored models answers its ``x-amzn-api-sandbox`` examples. An example
matches when each parameter it lists has that value (other parameters are ignored); the most
specific match wins, the first one in model order on a tie. Nothing matching gets Amazon's
``Could not match input arguments``. Auth is the production one; one 5 rps / 15 burst bucket
per seller covers every sandbox call.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from keybuzz.simulator.errors import invalid_input, quota_exceeded
from keybuzz.simulator.gateway import RATE_LIMIT_HEADER, SANDBOX_PREFIX, json_bytes, simulator_of
from keybuzz.simulator.operations import SANDBOX
from keybuzz.simulator.params import csv_list
from keybuzz.simulator.ratelimit import rate_header
from keybuzz.simulator.spec import Operation, SandboxExample, all_operations

NO_MATCH = "Could not match input arguments"


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(expected, bool):
        return str(actual).lower() == str(expected).lower()
    if isinstance(expected, list):
        return isinstance(actual, list) and [str(v) for v in actual] == [str(v) for v in expected]
    if isinstance(expected, dict):
        return bool(actual == expected)
    return str(actual) == str(expected)


async def request_values(operation: Operation, request: Request) -> dict[str, Any]:
    """The request's value of each parameter the model declares, by parameter name."""
    values: dict[str, Any] = {}
    query = request.query_params
    for parameter in operation.parameters:
        name, where = parameter["name"], parameter.get("in")
        if where == "path":
            values[name] = request.path_params[name]
        elif where == "query" and name in query:
            is_array = parameter.get("type") == "array"
            values[name] = csv_list(query, name) if is_array else query[name]
        elif where == "body":
            raw = await request.body()
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    raise invalid_input("The request body is not valid JSON.") from None
                # Examples name the body "body" even where the model calls it "payload".
                values[name] = values["body"] = body
    return values


def best_example(operation: Operation, values: dict[str, Any]) -> SandboxExample | None:
    best: SandboxExample | None = None
    for example in operation.sandbox:
        matches = all(
            name in values and _same(values[name], expected)
            for name, expected in example.parameters.items()
        )
        if matches and (best is None or len(example.parameters) > len(best.parameters)):
            best = example
    return best


def _handler(operation: Operation) -> Callable[[Request], Awaitable[Response]]:
    async def handle(request: Request) -> Response:
        simulator = simulator_of(request)
        request.state.operation = f"{SANDBOX}.{operation.operation_id}"
        with simulator.lock:
            token = simulator.credentials.authenticate(
                request.headers.get("x-amz-access-token"), simulator.clock.time()
            )
            if not simulator.limiter.try_acquire(token.refresh.seller_id, SANDBOX):
                raise quota_exceeded()
            plan = simulator.limiter.plan(SANDBOX)
        request.state.rate_plan = plan
        example = best_example(operation, await request_values(operation, request))
        if example is None:
            raise invalid_input(NO_MATCH, "")
        headers = {RATE_LIMIT_HEADER: rate_header(plan)}
        if example.status == 204 or example.response is None:
            return Response(status_code=example.status, headers=headers)
        content = json_bytes(example.response)
        return Response(content, example.status, headers, media_type="application/json")

    return handle


def sandbox_router() -> APIRouter:
    router = APIRouter(prefix=SANDBOX_PREFIX, include_in_schema=False)
    for operation in all_operations():
        router.add_api_route(
            operation.path,
            _handler(operation),
            methods=[operation.method],
            name=f"sandbox.{operation.model_file}.{operation.operation_id}",
        )
    return router

"""The static sandbox: every ``x-amzn-api-sandbox`` example of the five models, request in,
response out, under ``{base_url}/sandbox``."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from keybuzz.simulator.spec import Operation, SandboxExample, all_operations
from tests.simulator.conftest import SpApi

PLACEHOLDER = "SIM-PLACEHOLDER"
CASES = [
    pytest.param(op, index, id=f"{op.model_file}#{op.operation_id}[{index}]")
    for op in all_operations()
    for index in range(len(op.sandbox))
]


def build_request(http: httpx.Client, op: Operation, example: SandboxExample) -> httpx.Request:
    path = op.path
    query: dict[str, str] = {}
    body: Any = None
    for parameter in op.parameters:
        name, where = parameter["name"], parameter["in"]
        value = example.parameters.get(name)
        if where == "path":
            path = path.replace("{" + name + "}", str(value if value is not None else PLACEHOLDER))
        elif where == "query" and value is not None:
            query[name] = ",".join(map(str, value)) if isinstance(value, list) else str(value)
        elif where == "body":
            body = example.parameters.get("body", value)
            if body is None and parameter.get("required"):
                body = {}
    content = None if body is None else json.dumps(body).encode()
    headers = {"content-type": "application/json"} if content is not None else {}
    return http.build_request(
        op.method, "/sandbox" + path, params=query, content=content, headers=headers
    )


def expected_example(op: Operation, index: int) -> SandboxExample:
    """Two examples with the very same request cannot both be reached: the first one answers."""
    example = op.sandbox[index]
    return next(e for e in op.sandbox if e.parameters == example.parameters)


def test_every_model_has_static_examples() -> None:
    models = {op.model_file for op in all_operations() if op.sandbox}

    assert len(CASES) == 63
    assert len(models) == 5


@pytest.mark.parametrize(("op", "index"), CASES)
def test_sandbox_answers_as_the_model_says(api: SpApi, op: Operation, index: int) -> None:
    request = build_request(api.http, op, op.sandbox[index])
    request.headers["x-amz-access-token"] = api.access_token
    expected = expected_example(op, index)

    response = api.http.send(request)

    assert response.status_code == expected.status
    if expected.status == 204 or expected.response is None:
        assert response.content == b""
    else:
        assert response.json() == expected.response


def test_only_one_example_is_shadowed_by_an_identical_request() -> None:
    shadowed = [
        f"{op.operation_id}[{index}]"
        for op in all_operations()
        for index, example in enumerate(op.sandbox)
        if expected_example(op, index) is not example
    ]

    assert shadowed == ["getAccount[1]"]


def test_unmatched_request_gets_amazons_sandbox_error(api: SpApi) -> None:
    response = api.get("/sandbox/orders/v0/orders", CreatedAfter="2024-01-01", MarketplaceIds="X")

    assert response.status_code == 400
    assert response.json() == {
        "errors": [
            {"code": "InvalidInput", "message": "Could not match input arguments", "details": ""}
        ]
    }


def test_sandbox_needs_an_access_token(api: SpApi) -> None:
    response = api.http.get("/sandbox/sellers/v1/marketplaceParticipations")

    assert response.status_code == 403


def test_sandbox_does_not_touch_production_data(api: SpApi) -> None:
    sandbox = api.get("/sandbox/orders/v0/orders/TEST_CASE_200/orderItems").json()
    production = api.get("/orders/v0/orders/TEST_CASE_200/orderItems")

    assert sandbox["payload"]["OrderItems"][0]["ASIN"] == "B00551Q3CS"
    assert production.status_code == 400

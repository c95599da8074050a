"""The official SP-API models the simulator is faithful to: operations, usage plans, sandbox."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

MODEL_FILES = (
    "ordersV0.json",
    "orders_2026-01-01.json",
    "reports_2021-06-30.json",
    "sellers.json",
    "tokens_2021-03-01.json",
)
MODEL_SHA256 = {
    "ordersV0.json": "027ac6f5c97126647c6925db9be09f78c7c741cd1d8727a5367374a1846bedc5",
    "orders_2026-01-01.json": "4bd47126b466b94ccb04d822e3b94edee1fa7977a8b376a8c329852ef61be431",
    "reports_2021-06-30.json": "d72db9e5280262a92933a0e45e2207c150272f1d66177b2517c20671d69c732c",
    "sellers.json": "497862ea32de8040453649986e2cd7c6fcc15b55e8022becc783e4a6d6ffcffd",
    "tokens_2021-03-01.json": "3cd09ae7f218c83f32536a894cb8c42f2191c94b9c27f6bcf0a164442089b061",
}
HTTP_METHODS = ("get", "put", "post", "delete", "patch")
_USAGE_PLAN_ROW = re.compile(r"\|\s*([0-9]*\.?[0-9]+)\s*\|\s*([0-9]+)\s*\|")

Json = Any


@dataclass(frozen=True, slots=True)
class UsagePlan:
    rate: float
    burst: int


@dataclass(frozen=True, slots=True)
class SandboxExample:
    status: int
    parameters: dict[str, Json]
    response: Json


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation of a model, keyed by ``model_file`` and ``operation_id``.

    Operation ids repeat across models (``getOrder`` is in v0 and v2026), so the pair is the key.
    """

    model_file: str
    operation_id: str
    method: str
    path: str
    parameters: tuple[Json, ...]
    usage_plan: UsagePlan
    sandbox: tuple[SandboxExample, ...]

    @property
    def body_parameter(self) -> str | None:
        for parameter in self.parameters:
            if parameter.get("in") == "body":
                return str(parameter["name"])
        return None


def model_path(name: str) -> resources.abc.Traversable:
    return resources.files("keybuzz.simulator") / "spapi_models" / name


@cache
def load_model(name: str) -> dict[str, Json]:
    document: dict[str, Json] = json.loads(model_path(name).read_text(encoding="utf-8"))
    return document


def parse_usage_plan(description: str) -> UsagePlan:
    """The first ``| rate | burst |`` row of an operation's "Usage Plan" table."""
    match = _USAGE_PLAN_ROW.search(description)
    if match is None:
        raise ValueError("operation description has no usage-plan table")
    return UsagePlan(rate=float(match.group(1)), burst=int(match.group(2)))


def _sandbox_examples(responses: dict[str, Json]) -> tuple[SandboxExample, ...]:
    examples: list[SandboxExample] = []
    for status, response in responses.items():
        for example in response.get("x-amzn-api-sandbox", {}).get("static", []):
            parameters = example.get("request", {}).get("parameters", {})
            examples.append(
                SandboxExample(
                    status=int(status),
                    parameters={name: spec["value"] for name, spec in parameters.items()},
                    response=example.get("response"),
                )
            )
    return tuple(examples)


def _resolve_parameter(model: dict[str, Json], parameter: Json) -> Json:
    reference = parameter.get("$ref")
    if reference is None:
        return parameter
    return model["parameters"][reference.rsplit("/", 1)[-1]]


def _operations_of(model_file: str) -> list[Operation]:
    model = load_model(model_file)
    operations = []
    for path, item in model["paths"].items():
        shared = [_resolve_parameter(model, p) for p in item.get("parameters", [])]
        for method in HTTP_METHODS:
            if method not in item:
                continue
            operation = item[method]
            own = [_resolve_parameter(model, p) for p in operation.get("parameters", [])]
            operations.append(
                Operation(
                    model_file=model_file,
                    operation_id=operation["operationId"],
                    method=method.upper(),
                    path=path,
                    parameters=tuple(shared + own),
                    usage_plan=parse_usage_plan(operation.get("description", "")),
                    sandbox=_sandbox_examples(operation["responses"]),
                )
            )
    return operations


@cache
def all_operations() -> tuple[Operation, ...]:
    return tuple(op for model_file in MODEL_FILES for op in _operations_of(model_file))


def operation(model_file: str, operation_id: str) -> Operation:
    for candidate in all_operations():
        if candidate.model_file == model_file and candidate.operation_id == operation_id:
            return candidate
    raise KeyError(f"{model_file}#{operation_id}")

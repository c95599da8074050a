"""Validate bodies against the official Swagger 2.0 models, strictly.

Each model's ``definitions`` become a JSON Schema (draft 4, which Swagger 2.0 schemas are) with
``$ref`` resolved inside the model file. "Strict" adds ``additionalProperties: false`` to every
object the model describes, so a field the model does not know fails the test too.
"""

from __future__ import annotations

import copy
from datetime import datetime
from functools import cache
from typing import Any

from jsonschema import Draft4Validator, FormatChecker

from keybuzz.simulator.spec import load_model, operation

FORMATS = FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parsed = datetime.fromisoformat(value)
    return parsed.tzinfo is not None


def _strict(schema: Any) -> Any:
    if isinstance(schema, dict):
        strict = {key: _strict(value) for key, value in schema.items()}
        if "properties" in strict and "additionalProperties" not in strict:
            strict["additionalProperties"] = False
        return strict
    if isinstance(schema, list):
        return [_strict(value) for value in schema]
    return schema


@cache
def _definitions(model_file: str) -> dict[str, Any]:
    definitions = copy.deepcopy(load_model(model_file)["definitions"])
    return {name: _strict(schema) for name, schema in definitions.items()}


def response_schema(model_file: str, operation_id: str, status: int) -> dict[str, Any]:
    """The schema the model declares for this operation's answer with this status."""
    op = operation(model_file, operation_id)
    responses = load_model(model_file)["paths"][op.path][op.method.lower()]["responses"]
    schema = responses[str(status)]["schema"]
    return {**schema, "definitions": _definitions(model_file)}


def assert_matches_model(model_file: str, operation_id: str, status: int, body: Any) -> None:
    validator = Draft4Validator(
        response_schema(model_file, operation_id, status), format_checker=FORMATS
    )
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    details = "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])
    assert not errors, f"{model_file}#{operation_id} {status} does not match the model:\n{details}"

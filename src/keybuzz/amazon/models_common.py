"""What every Amazon payload model shares: unknown fields ignored, Amazon's timestamp quirks."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

_EPOCH = re.compile(r"^[+-]?\d+(\.\d+)?([eE][+-]?\d+)?$")


def parse_amazon_time(value: str | float) -> datetime:
    """ISO 8601 as Amazon writes it, plus the sandbox's epoch-seconds string
    (``"1.569521782042E9"`` in ``ordersV0.json#getOrders``); naive times are UTC."""
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), UTC)
    text = value.strip()
    if _EPOCH.match(text):
        return datetime.fromtimestamp(float(Decimal(text)), UTC)
    parsed = datetime.fromisoformat(text.replace("z", "Z"))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _amazon_time(value: Any) -> Any:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return parse_amazon_time(value)
    return value


AmazonTime = Annotated[datetime, BeforeValidator(_amazon_time)]


class AmazonModel(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class Error(AmazonModel):
    code: str
    message: str = ""
    details: str | None = None


class ErrorList(AmazonModel):
    errors: list[Error] = []


def describe_validation_error(error: ValidationError) -> str:
    """Where and why a payload did not fit its model, without the offending values (PII)."""
    problems = [
        f"{'.'.join(str(part) for part in problem['loc']) or 'body'}: {problem['type']}"
        for problem in error.errors(include_url=False, include_input=False, include_context=False)
    ]
    shown = "; ".join(problems[:5])
    more = f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""
    return shown + more

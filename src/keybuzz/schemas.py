"""The one Pydantic base for every API schema: camelCase JSON, exact decimals, UTC datetimes.

Pydantic writes a ``Decimal`` as a JSON string (``"12.50"``, never a float) and a UTC datetime
with a ``Z`` suffix; database sessions run in UTC, so every datetime read back is UTC.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

UtcDateTime = AwareDatetime
Money = Decimal


def _without_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain a NUL character")
    return value


WITHOUT_NUL = "^[^\\x00]*$"
SqlText = Annotated[
    str, AfterValidator(_without_nul), Field(json_schema_extra={"pattern": WITHOUT_NUL})
]
"""Text a request sends that reaches PostgreSQL, which stores no NUL character: the schema says
so (``pattern``), and a NUL is a 422 naming the field."""


_ISO_8601_START = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_8601(value: Any) -> Any:
    if isinstance(value, str) and not _ISO_8601_START.match(value):
        raise ValueError("an ISO 8601 date-time, e.g. 2026-01-31T00:00:00Z")
    return value


DateTimeParam = Annotated[dt.datetime, BeforeValidator(_iso_8601)]
"""A date-time a request sends, as its schema says (``format: date-time``): Pydantic alone would
also read a number, e.g. ``0.5``, as seconds since 1970."""


class Schema(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        from_attributes=True,
        serialize_by_alias=True,
    )

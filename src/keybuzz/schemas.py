"""The one Pydantic base for every API schema: camelCase JSON, exact decimals, UTC datetimes.

Pydantic writes a ``Decimal`` as a JSON string (``"12.50"``, never a float) and a UTC datetime
with a ``Z`` suffix; database sessions run in UTC, so every datetime read back is UTC.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

UtcDateTime = AwareDatetime
Money = Decimal


def _without_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain a NUL character")
    return value


SqlText = Annotated[str, AfterValidator(_without_nul)]
"""Text a request sends that reaches PostgreSQL, which stores no NUL character."""


class Schema(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        from_attributes=True,
        serialize_by_alias=True,
    )

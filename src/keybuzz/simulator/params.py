"""Query parameters the way Amazon reads them: CSV arrays, ISO dates, the 2-minute rule."""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass

from starlette.datastructures import QueryParams

from keybuzz.simulator.clock import iso, parse_iso
from keybuzz.simulator.errors import invalid_input
from keybuzz.simulator.orderbook import DateFamily

TWO_MINUTES = 120
MAX_MARKETPLACES = 50


def csv_list(query: QueryParams, name: str) -> list[str] | None:
    """Swagger 2.0 arrays are comma-separated; a repeated parameter is accepted too."""
    raw = query.getlist(name)
    if not raw:
        return None
    return [value for chunk in raw for value in chunk.split(",") if value]


def enum_list(query: QueryParams, name: str, allowed: Collection[str]) -> list[str] | None:
    values = csv_list(query, name)
    if values is None:
        return None
    invalid = [value for value in values if value not in allowed]
    if invalid:
        raise invalid_input(f"Invalid {name} value(s): {', '.join(invalid)}.")
    return values


def page_size(query: QueryParams, name: str) -> int:
    raw = query.get(name)
    if raw is None:
        return 100
    try:
        size = int(raw)
    except ValueError:
        raise invalid_input(f"{name} must be an integer between 1 and 100.") from None
    if not 1 <= size <= 100:
        raise invalid_input(f"{name} must be between 1 and 100.")
    return size


def required_marketplaces(
    query: QueryParams, name: str, seller_marketplaces: Collection[str]
) -> list[str]:
    values = marketplace_list(query, name, seller_marketplaces)
    if values is None:
        raise invalid_input(f"Missing required parameter: {name}.")
    return values


def marketplace_list(
    query: QueryParams, name: str, seller_marketplaces: Collection[str]
) -> list[str] | None:
    values = csv_list(query, name)
    if values is None:
        return None
    if len(values) > MAX_MARKETPLACES:
        raise invalid_input(f"{name} accepts at most {MAX_MARKETPLACES} values.")
    foreign = [value for value in values if value not in seller_marketplaces]
    if foreign:
        raise invalid_input(f"Invalid {name}: {', '.join(foreign)}.")
    return values


def date_param(query: QueryParams, name: str) -> float | None:
    raw = query.get(name)
    if raw is None:
        return None
    parsed = parse_iso(raw)
    if parsed is None:
        raise invalid_input(f"Invalid Date-Time field(s) [{name}].")
    return parsed


@dataclass(frozen=True, slots=True)
class DateNames:
    created_after: str
    created_before: str
    updated_after: str
    updated_before: str


@dataclass(frozen=True, slots=True)
class Window:
    family: DateFamily
    after: int
    before: int

    @property
    def before_iso(self) -> str:
        return iso(self.before)


def resolve_window(query: QueryParams, names: DateNames, now: int) -> Window:
    """Amazon's date rules: one family, an After bound, Before ≥ After and ≤ now - 2 minutes."""
    created_after = date_param(query, names.created_after)
    created_before = date_param(query, names.created_before)
    updated_after = date_param(query, names.updated_after)
    updated_before = date_param(query, names.updated_before)
    created = created_after is not None or created_before is not None
    updated = updated_after is not None or updated_before is not None
    if created and updated:
        raise invalid_input(
            f"{names.created_after}/{names.created_before} cannot be combined with "
            f"{names.updated_after}/{names.updated_before}."
        )
    if created:
        family, after, before = DateFamily.CREATED, created_after, created_before
        after_name, before_name = names.created_after, names.created_before
    else:
        family, after, before = DateFamily.UPDATED, updated_after, updated_before
        after_name, before_name = names.updated_after, names.updated_before
    if after is None:
        raise invalid_input(
            f"Exactly one of {names.created_after} and {names.updated_after} is required."
        )
    latest = now - TWO_MINUTES
    if before is not None and before > latest:
        raise invalid_input(
            f"{before_name} must be at least 2 minutes before the time of the request."
        )
    applied_before = latest if before is None else math.floor(before)
    if after > applied_before:
        raise invalid_input(
            f"{after_name} must be no later than {before_name} ({iso(applied_before)})."
        )
    return Window(family, math.ceil(after), applied_before)

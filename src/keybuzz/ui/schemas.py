"""What the Orders page's own URL may say: the list's filters, so that a link can be shared.

The page's script sends them on to ``GET /api/v1/orders``; here they only pre-fill the form.
A value the page does not know is left out rather than refused: a stale link still opens.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from keybuzz.orders.records import DeliveryStatus, OrderStatus, SavStatus, SlaStatus

STATUS_FILTERS: dict[str, tuple[str, ...]] = {
    "orderStatus": tuple(OrderStatus),
    "deliveryStatus": tuple(DeliveryStatus),
    "savStatus": tuple(SavStatus),
    "slaStatus": tuple(SlaStatus),
}
SORTS = ("-orderDate", "orderDate", "-updatedAt")
MAX_SEARCH_LENGTH = 200


@dataclass(frozen=True)
class PageFilters:
    q: str
    statuses: dict[str, str]
    """Per status filter (``orderStatus``...), the value chosen, or ``""`` for all."""
    date_from: str
    date_to: str
    sort: str

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> PageFilters:
        return cls(
            q=query.get("q", "")[:MAX_SEARCH_LENGTH],
            statuses={
                name: _one_of(query.get(name, ""), values)
                for name, values in STATUS_FILTERS.items()
            },
            date_from=_date(query.get("from", "")),
            date_to=_date(query.get("to", "")),
            sort=_one_of(query.get("sort", ""), SORTS) or SORTS[0],
        )


def _one_of(value: str, allowed: tuple[str, ...]) -> str:
    return value if value in allowed else ""


def _date(value: str) -> str:
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        return ""

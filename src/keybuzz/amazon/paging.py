"""Resumable order searches, paged the same way by getOrders (v0) and searchOrders (v2026).

Every page resends the first page's query unchanged, with Amazon's token for the next page, as
the pagination contract requires. Each page carries a ``Position`` (that query and that token):
saved as JSON, it lets a later run, in any process, resume after the page while the token lives.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from keybuzz.amazon.windows import WallClock, Window

Q = TypeVar("Q", bound="OrdersQuery")
OrderT = TypeVar("OrderT")
OrderT_co = TypeVar("OrderT_co", covariant=True)
Params = list[tuple[str, str]]


class OrdersQuery(BaseModel):
    """Every filter of one search. A subclass adds its API's filters and spells the names."""

    model_config = ConfigDict(frozen=True)

    window: Window = Window()
    max_results_per_page: int = Field(default=100, ge=1, le=100)

    DATE_NAMES: ClassVar[tuple[str, str, str, str]]
    """Created after, created before, updated after, updated before, as the API spells them."""
    LIST_NAMES: ClassVar[tuple[tuple[str, str], ...]]
    """The list filters (fields of ``tuple[str, ...]``, sent comma-separated if not empty), as
    (field, parameter name) in the order they are sent."""
    PAGE_SIZE_NAME: ClassVar[str]
    NEXT_TOKEN_NAME: ClassVar[str]

    def params(self, next_token: str | None = None) -> Params:
        params = self.window.params(self.DATE_NAMES)
        for field, name in self.LIST_NAMES:
            values: tuple[str, ...] = getattr(self, field)
            if values:
                params.append((name, ",".join(values)))
        params.append((self.PAGE_SIZE_NAME, str(self.max_results_per_page)))
        if next_token is not None:
            params.append((self.NEXT_TOKEN_NAME, next_token))
        return params


class Position(BaseModel, Generic[Q]):
    """Where a search stands; ``model_dump(mode="json")`` to save it, pass it back to resume."""

    model_config = ConfigDict(frozen=True)

    query: Q
    next_token: str


@dataclass(frozen=True, slots=True)
class OrdersPage(Generic[OrderT, Q]):
    orders: list[OrderT]
    position: Position[Q] | None
    """Resume after this page from here; ``None`` on the last page."""
    created_before: datetime | None = None
    last_updated_before: datetime | None = None
    """The upper bound Amazon applied: the next incremental run's ``last_updated_after``."""


class PageBody(Protocol[OrderT_co]):
    """What a page of either API answers, whatever its envelope."""

    @property
    def orders(self) -> Sequence[OrderT_co]: ...

    @property
    def next_token(self) -> str | None: ...

    @property
    def created_before(self) -> datetime | None: ...

    @property
    def last_updated_before(self) -> datetime | None: ...


async def paginate(
    position_type: type[Position[Q]],
    start: Q | Position[Q],
    fetch: Callable[[Params], Awaitable[PageBody[OrderT]]],
    wall_clock: WallClock,
) -> AsyncGenerator[OrdersPage[OrderT, Q], None]:
    """The pages of a new search (``start`` is its query, its upper bound made legal first), or
    of a saved one after ``start``'s page; ``fetch`` asks Amazon for one page, and the pages'
    positions are ``position_type``. A window Amazon would refuse as empty asks nothing."""
    next_token: str | None = None
    if isinstance(start, Position):
        query, next_token = start.query, start.next_token
    else:
        now = wall_clock()
        query = start.model_copy(update={"window": start.window.legal(now)})
        if query.window.is_empty(now):
            yield OrdersPage([], None)
            return
    while True:
        body = await fetch(query.params(next_token))
        next_token = body.next_token or None
        yield OrdersPage(
            orders=list(body.orders),
            position=position_type(query=query, next_token=next_token) if next_token else None,
            created_before=body.created_before,
            last_updated_before=body.last_updated_before,
        )
        if next_token is None:
            return

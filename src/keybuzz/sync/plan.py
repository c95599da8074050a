"""What a backfill has left to do, and when it will be done. Pure: no database, no network.

A backfill covers its window first (order reports in ≤ 30-day slices: every order, item and
status), then enriches the orders newest first (the order APIs bring buyer, recipient, totals,
deadlines and packages). Amazon's list calls cannot sort, so the enrichment asks for windows of
at most one page of orders each, cut from the order dates the coverage stored: each call brings
a full page, and the newest orders come first.

The plan is saved as the job's checkpoint (``model_dump(mode="json")``) with every page stored,
so a job step that ends (quota to wait for, a shutdown, a crash) resumes exactly there.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from keybuzz.amazon.reports import MAX_REPORT_RANGE
from keybuzz.amazon.windows import Window

PAGE_SIZE = 100
"""Orders per list page (Amazon's maximum, v0 and v2026)."""
BOUNDARY_GAP = dt.timedelta(seconds=2)
SECOND = dt.timedelta(seconds=1)
COVERAGE_SHARE = 0.2
"""Of the progress bar: the coverage is quick, the enrichment is where the time goes."""


class ReportSlice(BaseModel):
    """≤ 30 days of the window, one order report: requested, then read row by row."""

    start: dt.datetime
    end: dt.datetime
    report_id: str | None = None
    requested_at: dt.datetime | None = None
    rows_done: int = 0
    """Report rows stored so far: a resumed read skips them."""
    done: bool = False


class EnrichmentWindow(BaseModel):
    """Orders created in ``[after, before)``: at most one page of them, as stored."""

    model_config = ConfigDict(frozen=True)

    after: dt.datetime
    before: dt.datetime

    def amazon_window(self) -> Window:
        """The same orders as Amazon's created-after / created-before, whether Amazon reads
        the bounds inclusively or not: a cut falls on a second no order was created in."""
        return Window(created_after=self.after, created_before=self.before)


class PagingCursor(BaseModel):
    """A window one operation is paging, and where it stands (``None``: at its start)."""

    window: EnrichmentWindow
    position: dict[str, Any] | None = None


class BackfillPlan(BaseModel):
    purged: bool = False
    slices: list[ReportSlice] = []
    fresh: bool = False
    """No order of the window was stored when the coverage began: the reports' orders are all
    new, and are COPYed in rather than merged."""
    enrichment_total: int = 0
    """Orders of the window when the enrichment started."""
    next_before: dt.datetime | None = None
    """The enrichment's windows not handed out yet are older than this."""
    in_flight: dict[str, PagingCursor] = {}
    """Per operation (``v2026``, ``v0``), the window it is paging."""
    dropped: list[str] = []
    """Operations this backfill no longer uses (v0 refused, or past its removal)."""

    @property
    def coverage_done(self) -> bool:
        return bool(self.slices) and all(s.done for s in self.slices)

    @property
    def windows_left(self) -> bool:
        return self.next_before is not None or bool(self.in_flight)


def report_slices(start: dt.datetime, end: dt.datetime) -> list[ReportSlice]:
    """The window in consecutive slices of at most 30 days (Amazon's limit for order reports)."""
    slices = []
    while start < end:
        slice_end = min(end, start + MAX_REPORT_RANGE)
        slices.append(ReportSlice(start=start, end=slice_end))
        start = slice_end
    return slices


def next_window(
    newest_first: Sequence[dt.datetime], before: dt.datetime, floor: dt.datetime
) -> EnrichmentWindow | None:
    """The next window below ``before``, given the order dates just below it, newest first (at
    most ``PAGE_SIZE + 1`` of them); ``None`` when none is left above ``floor``.

    A cut falls between two orders at least two seconds apart, a second after the older one:
    no order was created in that second (dates are whole seconds), so no order sits on a bound
    of either window; the window then holds at most ``PAGE_SIZE`` orders.
    """
    if not newest_first:
        return None
    if len(newest_first) <= PAGE_SIZE:
        return EnrichmentWindow(after=floor, before=before)
    for count in range(PAGE_SIZE, 0, -1):
        newer, older = newest_first[count - 1], newest_first[count]
        if newer - older >= BOUNDARY_GAP:
            return EnrichmentWindow(after=older + SECOND, before=before)
    # More than a page within a few seconds: the window takes two pages, nothing is lost.
    return EnrichmentWindow(after=newest_first[PAGE_SIZE] + SECOND, before=before)


@dataclass(frozen=True, slots=True)
class Supply:
    """What one operation can deliver: pages in hand now, and pages a second after that."""

    tokens: float
    rate: float


def seconds_to_deliver(pages: int, supplies: Iterable[Supply]) -> float | None:
    """The least time the operations together need for ``pages`` more pages (their buckets'
    tokens now, then their rates); ``None`` when nothing can deliver."""
    supplies = list(supplies)
    rate = sum(s.rate for s in supplies)
    if pages <= 0:
        return 0.0
    if rate <= 0:
        return None
    in_hand = sum(math.floor(s.tokens) for s in supplies)
    return max(0.0, pages - in_hand) / rate


def pages_for(orders: int) -> int:
    return math.ceil(orders / PAGE_SIZE)


def progress(plan: BackfillPlan, *, orders_left: int | None) -> float:
    """0 to 1: the coverage's share by slices read, the enrichment's by orders left."""
    if not plan.coverage_done:
        if not plan.slices:
            return 0.0
        return COVERAGE_SHARE * sum(s.done for s in plan.slices) / len(plan.slices)
    if not plan.windows_left or plan.enrichment_total == 0 or orders_left is None:
        return 1.0 if not plan.windows_left else COVERAGE_SHARE
    done = 1 - min(orders_left, plan.enrichment_total) / plan.enrichment_total
    return COVERAGE_SHARE + (1 - COVERAGE_SHARE) * done

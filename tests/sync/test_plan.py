"""The backfill's plan: report slices, one-page enrichment windows cut between orders, the
time the quota needs, and the progress."""

from __future__ import annotations

import datetime as dt

from keybuzz.sync.plan import (
    PAGE_SIZE,
    BackfillPlan,
    EnrichmentWindow,
    PagingCursor,
    ReportSlice,
    Supply,
    next_window,
    progress,
    report_slices,
    seconds_to_deliver,
)

T0 = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)


def seconds(n: float) -> dt.timedelta:
    return dt.timedelta(seconds=n)


def test_ninety_days_are_three_reports_of_thirty_days_at_most() -> None:
    slices = report_slices(T0, T0 + dt.timedelta(days=90, hours=5))

    assert [(s.start, s.end) for s in slices] == [
        (T0, T0 + dt.timedelta(days=30)),
        (T0 + dt.timedelta(days=30), T0 + dt.timedelta(days=60)),
        (T0 + dt.timedelta(days=60), T0 + dt.timedelta(days=90)),
        (T0 + dt.timedelta(days=90), T0 + dt.timedelta(days=90, hours=5)),
    ]


def test_a_window_of_a_page_or_less_reaches_down_to_the_floor() -> None:
    dates = [T0 + seconds(1000 - 10 * i) for i in range(PAGE_SIZE)]

    window = next_window(dates, before=T0 + seconds(2000), floor=T0)

    assert window == EnrichmentWindow(after=T0, before=T0 + seconds(2000))


def test_a_window_holds_one_page_cut_a_second_after_the_next_older_order() -> None:
    dates = [T0 + seconds(5000 - 10 * i) for i in range(PAGE_SIZE + 1)]

    window = next_window(dates, before=T0 + seconds(6000), floor=T0)

    assert window is not None
    inside = [d for d in dates if window.after <= d < window.before]
    assert len(inside) == PAGE_SIZE
    assert window.after == dates[PAGE_SIZE] + seconds(1)


def test_no_order_sits_on_a_cut_even_when_orders_are_a_second_apart() -> None:
    # The 100th and 101st orders are one second apart: the cut moves to a wider gap.
    dates = [T0 + seconds(5000 - 10 * i) for i in range(PAGE_SIZE - 1)]
    dates += [dates[-1] - seconds(10), dates[-1] - seconds(11)]

    window = next_window(dates, before=T0 + seconds(6000), floor=T0)

    assert window is not None
    inside = [d for d in dates if window.after <= d < window.before]
    assert len(inside) == PAGE_SIZE - 1
    # Inclusive or exclusive bounds at Amazon give the same orders: none sits on a cut.
    assert window.after not in dates
    assert window.amazon_window().created_after == window.after


def test_no_window_below_the_oldest_order() -> None:
    assert next_window([], before=T0 + seconds(10), floor=T0) is None


def test_the_time_the_quota_needs_counts_tokens_in_hand_then_the_rates_together() -> None:
    supplies = [Supply(tokens=20.4, rate=0.0056), Supply(tokens=20.0, rate=0.0167)]

    assert seconds_to_deliver(30, supplies) == 0.0
    assert seconds_to_deliver(100, supplies) == (100 - 40) / (0.0056 + 0.0167)
    assert seconds_to_deliver(0, []) == 0.0
    assert seconds_to_deliver(5, [Supply(tokens=0, rate=0)]) is None


def test_progress_runs_through_the_coverage_then_the_enrichment() -> None:
    planned = BackfillPlan(slices=report_slices(T0, T0 + dt.timedelta(days=90)))
    assert progress(planned, orders_left=None) == 0.0

    planned.slices[0].done = True
    assert progress(planned, orders_left=None) == 0.2 / 3

    for slice_ in planned.slices:
        slice_.done = True
    planned.enrichment_total = 1000
    planned.next_before = T0 + dt.timedelta(days=45)
    assert progress(planned, orders_left=1000) == 0.2
    assert progress(planned, orders_left=250) == 0.2 + 0.8 * 0.75

    planned.next_before = None
    assert progress(planned, orders_left=0) == 1.0


def test_a_plan_saved_as_json_comes_back_the_same() -> None:
    window = EnrichmentWindow(after=T0, before=T0 + seconds(60))
    planned = BackfillPlan(
        slices=[ReportSlice(start=T0, end=T0 + dt.timedelta(days=1), report_id="R1", rows_done=7)],
        next_before=T0,
        in_flight={"v0": PagingCursor(window=window, position={"next_token": "x"})},
        dropped=["v0"],
    )

    assert BackfillPlan.model_validate(planned.model_dump(mode="json")) == planned

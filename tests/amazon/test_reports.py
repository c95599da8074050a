"""Order reports against the simulator: create, poll, download, parse as a stream."""

from __future__ import annotations

import asyncio
import gc
import gzip
import itertools
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from keybuzz.amazon.client import SpApiClient
from keybuzz.amazon.errors import AmazonReportFailed
from keybuzz.amazon.flatfile import parse_order_rows
from keybuzz.amazon.reports import CANCELLED, ORDERS_BY_ORDER_DATE, OrderReportQuery
from keybuzz.orders.records import OrderRecord, OrderStatus, RejectedOrder
from keybuzz.simulator import SimulatorServer
from keybuzz.simulator.faults import NOT_A_DATE, FaultKind, ScriptedFault
from tests.amazon.conftest import (
    FR,
    Connect,
    amazon_config,
    counts,
    new_seller,
    on_one_clock,
    sim_settings,
    truth,
)
from tests.fixtures.simulator import InProcessSimulator
from tests.fixtures.virtual_time import in_virtual_time

NOW = datetime.now(UTC)


async def test_report_orders_match_the_api(
    make_sim: Callable[..., SimulatorServer], connect: Connect
) -> None:
    server = make_sim()
    seller = new_seller(server, orders=80, days=70)
    client = connect(server, seller)
    expected = {o["orderId"]: o for o in truth(server, seller)}

    records = [
        record
        async for record in client.order_report_records(
            OrderReportQuery(
                marketplace_ids=[FR],
                data_start_time=NOW - timedelta(days=75),
                data_end_time=NOW - timedelta(minutes=3),
            ),
            first_poll=0.01,
        )
    ]

    # 75 days in slices of at most 30: three reports.
    assert counts(server, "reports.createReport") == {"202": 3}
    assert all(isinstance(r, OrderRecord) and not r.enriched for r in records)
    records = [r for r in records if isinstance(r, OrderRecord)]
    assert sorted(r.external_order_id for r in records) == sorted(expected)
    for record in records:
        wanted = expected[record.external_order_id]
        assert [i.sku for i in record.items or ()] == [
            i["product"]["sellerSku"] for i in wanted["orderItems"]
        ]
        assert [i.unit_price for i in record.items or ()] == [
            Decimal(i["product"]["price"]["unitPrice"]["amount"])
            if "price" in i["product"]
            else None
            for i in wanted["orderItems"]
        ]
        assert record.customer_name is None
        assert record.total_amount is None
    assert {r.order_status for r in records} >= {OrderStatus.SHIPPED, OrderStatus.CONFIRMED}


async def test_a_report_without_orders_ends_cancelled(
    sim: SimulatorServer, connect: Connect
) -> None:
    client = connect(sim, new_seller(sim, orders=0))

    report_id = await client.reports.create_report(
        report_type=ORDERS_BY_ORDER_DATE,
        marketplace_ids=[FR],
        data_start_time=NOW - timedelta(days=10),
        data_end_time=NOW - timedelta(days=1),
    )
    report = await client.reports.wait_for_report(report_id, first_poll=0.01)
    orders = [
        order
        async for order in client.order_report_records(
            OrderReportQuery(
                marketplace_ids=[FR],
                data_start_time=NOW - timedelta(days=10),
                data_end_time=NOW - timedelta(days=1),
            ),
            first_poll=0.01,
        )
    ]

    assert report.processing_status == CANCELLED
    assert report.finished
    assert report.report_document_id is None
    assert orders == []


async def test_a_fatal_report_is_an_error(sim: SimulatorServer, connect: Connect) -> None:
    client = connect(sim)
    report_id = await client.reports.create_report(
        report_type=ORDERS_BY_ORDER_DATE,
        marketplace_ids=[FR],
        data_start_time=NOW - timedelta(days=45),
        data_end_time=NOW - timedelta(days=1),
    )

    with pytest.raises(AmazonReportFailed, match=f"report {report_id} .* ended FATAL"):
        await client.reports.wait_for_report(report_id, first_poll=0.01)


@in_virtual_time
async def test_polling_waits_for_generation_and_an_expired_url_is_renewed() -> None:
    amazon = InProcessSimulator.start(sim_settings(report_generation_seconds=0.3))
    seller = new_seller(amazon, orders=30, days=10)
    async with amazon.http() as http:
        client = on_one_clock(amazon, http, seller)
        report_id = await client.reports.create_report(
            report_type=ORDERS_BY_ORDER_DATE,
            marketplace_ids=[FR],
            data_start_time=NOW - timedelta(days=12),
        )

        report = await client.reports.wait_for_report(report_id, first_poll=0.05)
        assert report.report_document_id is not None
        document = await client.reports.get_report_document(report.report_document_id)
        amazon.simulator.advance_clock(301)
        rows = [
            row async for row in parse_order_rows(client.reports.download_report_document(document))
        ]

    # Polls at 0, 0.05, 0.125 and 0.2375 s find it in progress, at 0.40625 s done (0.3 s).
    assert counts(amazon, "reports.getReport") == {"200": 5}
    assert counts(amazon, "reports.getReportDocument") == {"200": 2}
    assert {row.amazon_order_id for row in rows} == {o["orderId"] for o in truth(amazon, seller)}


@pytest.mark.slow
async def test_fifty_thousand_rows_in_constant_memory(
    make_sim: Callable[..., SimulatorServer], connect: Connect
) -> None:
    server = make_sim(orders=0)
    seller = new_seller(server, orders=30_000, days=29, seed=3)
    # Generating 30,000 orders' report takes the simulator seconds of CPU, more on a busy
    # machine: this test is about memory, so no call of it is given up for slowness.
    client = connect(server, seller, config=amazon_config(server, spapi_timeout_seconds=120))
    report_id = await client.reports.create_report(
        report_type=ORDERS_BY_ORDER_DATE,
        marketplace_ids=[FR],
        data_start_time=datetime.now(UTC) - timedelta(days=29, hours=23),
    )
    report = await client.reports.wait_for_report(report_id, first_poll=0.01)
    assert report.report_document_id is not None
    document = await client.reports.get_report_document(report.report_document_id)
    stored = server.simulator.reports.document_for(seller, report.report_document_id, 1e12)
    assert stored is not None
    text_size = len(gzip.decompress(stored.content))
    del stored

    gc.collect()
    tracemalloc.start()
    try:
        orders = rows = 0
        async for item in client.reports.report_records(document):
            assert isinstance(item.order, OrderRecord)
            orders, rows = orders + 1, item.rows_done
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert rows >= 50_000
    assert orders == len(server.simulator.seller(seller).book.visible(server.simulator.now()))
    # Holding the document, let alone its rows, would take several times the bound.
    assert text_size > 10_000_000
    assert peak < 4_000_000


@in_virtual_time
async def test_the_slices_are_requested_together_and_their_state_followed() -> None:
    amazon = InProcessSimulator.start(sim_settings(report_generation_seconds=0.3))
    seller = new_seller(amazon, orders=30, days=70)
    query = OrderReportQuery(
        marketplace_ids=[FR],
        data_start_time=NOW - timedelta(days=75),
        data_end_time=NOW - timedelta(minutes=3),
    )
    slices = query.slices()
    async with amazon.http() as http:
        client = on_one_clock(amazon, http, seller)

        report_ids = await client.reports.request_reports(slices)
        created = counts(amazon, "reports.createReport")
        first = await client.reports.report_state(report_ids[0])
        await asyncio.sleep(0.3)
        states = [await client.reports.report_state(i) for i in report_ids]
        reports = [await client.reports.get_report(i) for i in report_ids]

    assert [(s.data_start_time, s.data_end_time) for s in slices] == [
        (NOW - timedelta(days=75), NOW - timedelta(days=45)),
        (NOW - timedelta(days=45), NOW - timedelta(days=15)),
        (NOW - timedelta(days=15), NOW - timedelta(minutes=3)),
    ]
    assert created == {"202": 3}
    assert [r.data_start_time for r in reports] == [
        s.data_start_time.replace(microsecond=0) for s in slices
    ]
    assert (first.processing_status, first.report_document_id, first.finished) == (
        "IN_QUEUE",
        None,
        False,
    )
    assert all(s.processing_status == "DONE" and s.report_document_id for s in states)


async def test_a_slice_over_thirty_days_is_refused_before_asking(
    sim: SimulatorServer, connect: Connect
) -> None:
    client = connect(sim)
    too_long = OrderReportQuery(
        marketplace_ids=[FR], data_start_time=NOW - timedelta(days=31), data_end_time=NOW
    )

    with pytest.raises(ValueError, match="at most 30 days"):
        await client.reports.request_reports([too_long])

    assert client.stats.requests["reports.createReport"] == 0


async def test_a_fatal_report_state_is_an_error(sim: SimulatorServer, connect: Connect) -> None:
    client = connect(sim)
    report_id = await client.reports.create_report(
        report_type=ORDERS_BY_ORDER_DATE,
        marketplace_ids=[FR],
        data_start_time=NOW - timedelta(days=45),
        data_end_time=NOW - timedelta(days=1),
    )

    with pytest.raises(AmazonReportFailed, match=f"report {report_id} .* ended FATAL"):
        await client.reports.report_state(report_id)


async def document_of(client: SpApiClient, days: int = 29) -> str:
    # The time of the call, not of the module's import: a loaded run reaches this test minutes
    # after the import, and the seller's newest orders would fall after the report's end.
    now = datetime.now(UTC)
    (report_id,) = await client.reports.request_reports(
        [
            OrderReportQuery(
                marketplace_ids=[FR],
                data_start_time=now - timedelta(days=days),
                data_end_time=now - timedelta(minutes=3),
            )
        ]
    )
    state = await client.reports.wait_for_report(report_id, first_poll=0.01)
    assert state.report_document_id is not None
    return state.report_document_id


async def test_records_resume_after_any_order_already_handled(
    sim: SimulatorServer, connect: Connect
) -> None:
    seller = new_seller(sim, orders=40, days=20)
    client = connect(sim, seller)
    document = await document_of(client)

    full = [item async for item in client.reports.report_records(document)]

    ids = [item.order.external_order_id for item in full]
    rows = [item.rows_done for item in full]
    item_counts = [len(o["orderItems"]) for o in truth(sim, seller)]
    assert sorted(ids) == sorted(o["orderId"] for o in truth(sim, seller))
    assert rows == list(itertools.accumulate(len(i.order.items or ()) for i in full))
    assert rows[-1] == sum(item_counts)
    assert max(item_counts) > 1  # orders of several rows: a row count is not an order count
    for cut in (1, 7, len(full) - 1):
        rest = [
            item
            async for item in client.reports.report_records(
                document, skip_rows=full[cut - 1].rows_done
            )
        ]
        assert rest == full[cut:]


async def test_a_malformed_order_in_a_report_is_set_aside(
    make_sim: Callable[..., SimulatorServer], connect: Connect
) -> None:
    server = make_sim()
    seller = new_seller(server, orders=30, days=20)
    client = connect(server, seller)
    server.simulator.script_faults(
        [ScriptedFault(FaultKind.MALFORMED_ORDER, "reports.createReport")]
    )

    items = [item async for item in client.reports.report_records(await document_of(client))]

    rejected = [i.order for i in items if isinstance(i.order, RejectedOrder)]
    assert len(rejected) == 1
    bad = rejected[0]
    first_line = bad.payload
    assert (bad.source, bad.marketplace) == ("report", "amazon")
    assert bad.external_order_id == first_line["amazon-order-id"]
    assert first_line["purchase-date"] == NOT_A_DATE
    assert bad.reason.startswith("order report line 2: purchase-date is unreadable")
    assert NOT_A_DATE not in bad.reason
    stored = [i.order.external_order_id for i in items if isinstance(i.order, OrderRecord)]
    assert sorted([*stored, bad.external_order_id]) == sorted(
        o["orderId"] for o in truth(server, seller)
    )

"""The worker's CPU for a backfill's report import, apart from everything else the machine runs.

    python bench/bench_report_cpu.py [--orders 100000] [--repeat 3] [--no-store]

A simulated seller's order report (``--orders`` orders over 89 days, one marketplace, the
simulator's own generator and flat file, gzipped as the simulator serves it) is read through the
worker's own path: ``ReportsApi.report_records`` over an in-process transport (download,
gunzip, parse, group, normalise) cut into the engine's chunks (``sync.engine._report_chunks``),
then each chunk stored as a tenant's first backfill stores it (``upsert_orders`` with
``expect_new``, the COPY fast path, under row-level security as the app's role) in a scratch
database dropped at the end.

Figures are CPU seconds (``time.process_time``) of this process, per phase, and of the
PostgreSQL backend that stored the chunks (from ``/proc``), so they hold on a loaded machine
where wall-clock times do not. The best of ``--repeat`` runs is shown.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_orders import drop_database, server_url
from keybuzz.amazon.models_reports import ReportDocument
from keybuzz.amazon.reports import ReportsApi
from keybuzz.db import (
    app_role_url,
    create_engine,
    create_sessionmaker,
    libpq_url,
    migrate,
    raw_connection,
    tenant_transaction,
    transaction,
)
from keybuzz.orders.models import EventSource
from keybuzz.orders.upsert import upsert_orders
from keybuzz.simulator import flatfile
from keybuzz.simulator.generator import OrderGenerator, catalog_size_for
from keybuzz.simulator.marketplaces import BY_CODE
from keybuzz.sync import engine
from keybuzz.sync.plan import ReportSlice
from keybuzz.tenants.models import TenantId
from keybuzz.tenants.service import create_tenant

DATA_DAYS = 89
DOCUMENT_URL = "https://documents.example/report"
TENANT = TenantId("reportcpu-bench")


def report_document(orders: int) -> bytes:
    """The gzipped flat file of a seller of ``orders`` orders, as the simulator serves it."""
    now = int(datetime.now(UTC).timestamp())
    generator = OrderGenerator(
        seed=7, marketplace_ids=[BY_CODE["FR"].id], catalog_size=catalog_size_for(orders)
    )
    book = generator.generate(orders, now - DATA_DAYS * 86400, now - 3600)
    return gzip.compress(flatfile.render(book, now).encode("utf-8"), mtime=0)


@dataclass
class _Reports:
    """What ``_report_chunks`` asks of a client's reports: the document, already fetched."""

    api: ReportsApi
    document: ReportDocument

    def report_records(self, document_id: str, *, skip_rows: int = 0) -> AsyncIterator[Any]:
        return self.api.report_records(self.document, skip_rows=skip_rows)


@dataclass
class _Client:
    reports: _Reports


def chunks_of(content: bytes) -> tuple[AsyncIterator[engine._ReportChunk], httpx.AsyncClient]:
    """The document's chunks, read as the worker reads them."""

    class Body(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            for start in range(0, len(content), 16384):
                yield content[start : start + 16384]

    http = httpx.AsyncClient(
        transport=httpx.MockTransport(lambda _: httpx.Response(200, stream=Body()))
    )
    document = ReportDocument(
        report_document_id="doc", url=DOCUMENT_URL, compression_algorithm="GZIP"
    )
    client = _Client(_Reports(ReportsApi(None, http, timeout=60), document))  # type: ignore[arg-type]
    start = datetime.now(UTC) - timedelta(days=DATA_DAYS + 1)
    report = ReportSlice(start=start, end=datetime.now(UTC))
    job = engine.ReportJob(
        client,  # type: ignore[arg-type]
        "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL",
        ["A13V1IB3VIYZZH"],
        [report],
        save=None,  # type: ignore[arg-type]
        store_chunk=None,  # type: ignore[arg-type]
        saving=asyncio.Lock(),
    )
    return engine._report_chunks(job, report, "doc"), http


def backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100


@dataclass
class Figures:
    orders: int = 0
    items: int = 0
    parse: float = 0.0
    """CPU seconds of this process getting the chunks (download, gunzip, parse, normalise)."""
    store: float = 0.0
    """CPU seconds of this process storing them (COPY rows formatted and sent)."""
    backend: float = 0.0
    """CPU seconds of the PostgreSQL backend storing them."""


async def import_report(content: bytes, url: str | None) -> Figures:
    """Read the report chunk by chunk and, with ``url``, store each as the worker does (a
    first backfill under row-level security), timing the two apart: like the worker, no more
    than a chunk is held at a time."""
    figures = Figures()
    sessionmaker = pid = app = None
    if url is not None:
        owner = create_engine(url, pool_size=1)
        async with transaction(create_sessionmaker(owner)) as session:
            await create_tenant(session, TENANT, "Benchmark")
        await owner.dispose()
        app = create_engine(app_role_url(url), pool_size=1)
        sessionmaker = create_sessionmaker(app)
        async with transaction(sessionmaker) as session:
            cursor = await (await raw_connection(session)).execute("SELECT pg_backend_pid()")
            row = await cursor.fetchone()
            assert row is not None
            pid = row[0]
    chunks, http = chunks_of(content)
    backend_before = backend_cpu(pid) if pid is not None else 0.0
    while True:
        before = time.process_time()
        chunk = await anext(chunks, None)
        figures.parse += time.process_time() - before
        if chunk is None:
            break
        figures.orders += len(chunk.records)
        figures.items += sum(len(record.items or ()) for record in chunk.records)
        if sessionmaker is not None:
            before = time.process_time()
            async with tenant_transaction(sessionmaker, TENANT) as session:
                await upsert_orders(
                    session, TENANT, chunk.records, source=EventSource.BACKFILL, expect_new=True
                )
            figures.store += time.process_time() - before
    if pid is not None:
        figures.backend = backend_cpu(pid) - backend_before
    await http.aclose()
    if app is not None:
        await app.dispose()
    return figures


async def run(options: argparse.Namespace) -> None:
    started = time.perf_counter()
    content = report_document(options.orders)
    print(
        f"report of {options.orders:,} orders: {len(content) / 1e6:.1f} MB gzipped, "
        f"made in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    server = server_url()
    best: dict[str, float] = {}
    for attempt in range(options.repeat):
        name = url = None
        if not options.no_store:
            name = f"reportcpu_bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(libpq_url(server), autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            url = make_url(server).set(database=name).render_as_string(hide_password=False)
        try:
            if url is not None:
                migrate(url)
            figures = await import_report(content, url)
        finally:
            if name is not None:
                drop_database(server, name)
        line = (
            f"run {attempt + 1}: {figures.orders:,} orders, {figures.items:,} items; "
            f"parse {figures.parse:.2f} CPU-s"
        )
        best["parse"] = min(best.get("parse", figures.parse), figures.parse)
        if url is not None:
            line += (
                f", store {figures.store:.2f} CPU-s "
                f"(PostgreSQL backend {figures.backend:.2f} CPU-s)"
            )
            best["store"] = min(best.get("store", figures.store), figures.store)
            best["backend"] = min(best.get("backend", figures.backend), figures.backend)
        print(line, flush=True)
    scale = 100_000 / options.orders
    print("best, per 100,000 orders:")
    for phase, seconds in best.items():
        print(f"  {phase:<8} {seconds * scale:6.2f} CPU-s")
    if "store" in best:
        print(f"  {'worker':<8} {(best['parse'] + best['store']) * scale:6.2f} CPU-s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-store", action="store_true")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()

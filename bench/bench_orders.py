"""Orders foundation benchmark: upsert throughput against COPY, and API latency against raw SQL.

    python bench/bench_orders.py [--orders 1000000] [--samples 300] [--changes-only]

It fills one tenant with N orders (2.5 items each on average) through the application's upsert
path, then COPYs the same rows into empty copies of the same tables, side by side in one run;
then it times upserts of orders that are already stored and come back changed (2,000 and 10,000
at once: a line dropped, or the report's lines replaced by the API's); then it serves the API
with uvicorn over loopback and times four list queries, each beside the same SQL sent with
psycopg (the API's own statements, in its one round trip).
Targets: upsert >= 40 % of COPY throughput; API p99 <= 3x raw SQL p99 and < 50 ms.
``--changes-only`` runs the changed-orders timings alone, on an otherwise empty database. Uses
the machine's PostgreSQL on 127.0.0.1:5432 when it answers (else the embedded server) in a
scratch database that it drops at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.orders_data import generate
from keybuzz.db import (
    create_engine,
    create_sessionmaker,
    libpq_url,
    migrate,
    start_embedded_postgres,
    transaction,
)
from keybuzz.orders.reads import list_sql
from keybuzz.orders.records import Detail, ItemRecord, OrderRecord, OrderStatus
from keybuzz.orders.repository import SORTS, OrderQuery
from keybuzz.orders.service import encode_cursor
from keybuzz.orders.upsert import items_digest, upsert_orders
from keybuzz.reads import Reads, Sql
from keybuzz.tenants.models import TenantId
from keybuzz.tenants.service import Credentials, create_tenant, credential_check

TENANT = TenantId("bench-001")
CHUNK = 10_000
RESULTS = Path(__file__).resolve().parent / "results"
UNMET_RATE_LIMITS = {
    f"KEYBUZZ_RATE_LIMIT_{name}": "1000000"
    for name in ("KEY_PER_SECOND", "KEY_BURST", "TENANT_PER_SECOND", "TENANT_BURST")
}
"""The benchmark's one client asks back to back, past a key's default limit: the limits stay on,
with leases so large that no refill lands in the figures (a default key refills at every request,
one short statement); the limits have a benchmark of their own (bench_ratelimit.py)."""


def server_url() -> str:
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=1).close()
        return "postgresql://postgres@127.0.0.1:5432/postgres"
    except OSError:
        root = Path(__file__).resolve().parents[1]
        return start_embedded_postgres(root / ".keybuzz" / "bench-pgdata", "postgres")


def scratch_database(server: str) -> str:
    name = f"kb_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(libpq_url(server), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def scratch_url(server: str) -> tuple[str, str]:
    """A new scratch database on ``server``: its name, and the URL to reach it."""
    name = scratch_database(server)
    return name, make_url(server).set(database=name).render_as_string(hide_password=False)


def drop_database(server: str, name: str) -> None:
    with psycopg.connect(libpq_url(server), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def chunks(count: int) -> Iterator[list[OrderRecord]]:
    batch: list[OrderRecord] = []
    for record in generate(count):
        batch.append(record)
        if len(batch) == CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


# --- Upsert against COPY ---------------------------------------------------------------------


async def fill_with_upsert(url: str, count: int) -> float:
    engine = create_engine(url, pool_size=1)
    sessionmaker = create_sessionmaker(engine)
    async with transaction(sessionmaker) as session:
        await create_tenant(session, TENANT, "Benchmark")
    elapsed = 0.0
    for number, batch in enumerate(chunks(count), start=1):
        started = time.perf_counter()
        async with transaction(sessionmaker) as session:
            await upsert_orders(session, TENANT, batch)
        elapsed += time.perf_counter() - started
        if number % 10 == 0:
            done = number * CHUNK
            print(f"  upsert {done:>9,} orders  {done / elapsed:>8,.0f} orders/s", flush=True)
    await engine.dispose()
    return elapsed


COPY_ORDER_COLUMNS = (
    "id, tenant_id, marketplace, marketplace_id, external_order_id, order_ref, customer_name, "
    "customer_email, order_date, currency, total_amount, order_status, delivery_status, "
    "fulfillment_channel, shipping_address, latest_ship_date, external_updated_at, items_digest"
)
COPY_ITEM_COLUMNS = "tenant_id, order_id, external_item_id, sku, asin, title, quantity, unit_price"


def copy_rows(batch: list[OrderRecord]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    orders, items = [], []
    for record in batch:
        order_id = uuid.uuid4()
        record_items = list(record.items or ())
        orders.append(
            (
                order_id,
                TENANT,
                record.marketplace,
                record.marketplace_id,
                record.external_order_id,
                record.external_order_id,
                record.customer_name,
                record.customer_email,
                record.order_date,
                record.currency,
                record.total_amount,
                record.order_status.value,
                record.delivery_status.value if record.delivery_status else None,
                record.fulfillment_channel,
                Jsonb(record.shipping_address),
                record.latest_ship_date,
                record.external_updated_at,
                items_digest(record_items),
            )
        )
        items += [
            (
                TENANT,
                order_id,
                item.external_item_id,
                item.sku,
                item.asin,
                item.title,
                item.quantity,
                item.unit_price,
            )
            for item in record_items
        ]
    return orders, items


async def copy_batch(
    conn: psycopg.AsyncConnection[Any],
    orders_table: str,
    items_table: str,
    records: list[OrderRecord],
) -> float:
    """COPY the records' orders and items into the two tables in one transaction; seconds."""
    orders, items = copy_rows(records)
    started = time.perf_counter()
    async with conn.transaction(), conn.cursor() as cur:
        async with cur.copy(f"COPY {orders_table} ({COPY_ORDER_COLUMNS}) FROM STDIN") as copy:
            for row in orders:
                await copy.write_row(row)
        async with cur.copy(f"COPY {items_table} ({COPY_ITEM_COLUMNS}) FROM STDIN") as copy:
            for row in items:
                await copy.write_row(row)
    return time.perf_counter() - started


async def fill_with_copy(url: str, count: int, *, indexed: bool) -> float:
    """COPY the same rows into empty tables (with the same indexes, or bare)."""
    including = "INCLUDING ALL" if indexed else "INCLUDING DEFAULTS INCLUDING GENERATED"
    suffix = "indexed" if indexed else "bare"
    async with await psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True) as conn:
        await conn.execute(f"CREATE TABLE copy_orders_{suffix} (LIKE orders {including})")
        await conn.execute(f"CREATE TABLE copy_items_{suffix} (LIKE order_items {including})")
        elapsed = 0.0
        tables = f"copy_orders_{suffix}", f"copy_items_{suffix}"
        for batch in chunks(count):
            elapsed += await copy_batch(conn, *tables, batch)
        await conn.execute(f"DROP TABLE copy_orders_{suffix}, copy_items_{suffix}")
    return elapsed


async def fill(url: str, count: int) -> None:
    """Tenant ``TENANT`` with ``count`` orders, COPYed (the fast way to a large tenant)."""
    engine = create_engine(url, pool_size=1)
    async with transaction(create_sessionmaker(engine)) as session:
        await create_tenant(session, TENANT, "Benchmark")
    await engine.dispose()
    started = time.perf_counter()
    async with await psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True) as conn:
        for number, batch in enumerate(chunks(count), start=1):
            await copy_batch(conn, "orders", "order_items", batch)
            if number % 20 == 0:
                done = number * len(batch)
                print(f"  COPY {done:>9,} orders  {time.perf_counter() - started:>6.0f} s")
        await conn.execute("VACUUM ANALYZE orders")
        await conn.execute("VACUUM ANALYZE order_items")


def a_buyer_name(url: str, count: int) -> str:
    with psycopg.connect(libpq_url(url)) as conn:
        row = conn.execute(
            "SELECT customer_name FROM orders WHERE tenant_id = %s OFFSET %s LIMIT 1",
            (TENANT, count // 2),
        ).fetchone()
    return str(row[0]) if row else "Martin"


# --- Changed orders ----------------------------------------------------------------------------

CHANGED_BATCHES = (2_000, 10_000)


def as_report(record: OrderRecord) -> OrderRecord:
    """The order as the flat-file report gives it: lines known by SKU (made unique), no total."""
    seen: dict[str, int] = {}
    items = []
    for item in record.items or ():
        base = item.sku or item.asin or "line"
        seen[base] = seen.get(base, 0) + 1
        key = base if seen[base] == 1 else f"{base}#{seen[base]}"
        items.append(dataclasses.replace(item, external_item_id=key))
    return dataclasses.replace(
        record,
        customer_name=None,
        customer_email=None,
        total_amount=None,
        latest_ship_date=None,
        items=tuple(items),
        detail=Detail.REPORT,
    )


def as_api(record: OrderRecord) -> OrderRecord:
    """The order as an order API gives it, everything it says."""
    return dataclasses.replace(record, detail=Detail.FULL)


def one_line_dropped(record: OrderRecord) -> OrderRecord:
    """A newer version of the order: its last line gone (or, alone, its quantity changed)."""
    items = record.items or ()
    if len(items) > 1:
        changed: tuple[ItemRecord, ...] = items[:-1]
    else:
        changed = tuple(dataclasses.replace(i, quantity=i.quantity + 1) for i in items)
    return dataclasses.replace(
        record,
        order_status=OrderStatus.SHIPPED,
        external_updated_at=record.external_updated_at + dt.timedelta(hours=1),
        items=changed,
    )


async def time_changed_batches(url: str) -> list[dict[str, Any]]:
    """Upsert N stored orders again, changed, in one call; time that call's transaction."""
    scenarios: list[tuple[str, Callable[[OrderRecord], OrderRecord], Any]] = [
        ("a line dropped", lambda r: r, one_line_dropped),
        ("report lines -> API lines", as_report, as_api),
    ]
    engine = create_engine(url, pool_size=1)
    sessionmaker = create_sessionmaker(engine)
    results = []
    for number, (label, first, then) in enumerate(scenarios):
        for size in CHANGED_BATCHES:
            tenant = TenantId(f"bench-changes-{number}-{size}")
            records = list(generate(size, seed=size + number))
            async with transaction(sessionmaker) as session:
                await create_tenant(session, tenant, "Benchmark")
                await upsert_orders(session, tenant, [first(r) for r in records])
            changed = [then(r) for r in records]
            started = time.perf_counter()
            async with transaction(sessionmaker) as session:
                result = await upsert_orders(session, tenant, changed)
            seconds = time.perf_counter() - started
            assert result.orders_written == size, result
            results.append({"changed": label, "orders": size, "seconds": round(seconds, 3)})
            print(f"  {label:<28} {size:>7,} orders  {seconds:>7.2f} s", flush=True)
    await engine.dispose()
    return results


# --- API against raw SQL ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def time_calls(call: Callable[[], Awaitable[Any]], samples: int) -> list[float]:
    for _ in range(max(10, samples // 10)):
        await call()
    timings = []
    for _ in range(samples):
        started = time.perf_counter()
        await call()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


async def raw_list(conn: psycopg.AsyncConnection[Any], key: str, query: OrderQuery) -> None:
    """The API's transaction for that page, sent straight with psycopg: the statements the API
    sends (the key's check, which sets the tenant, and the list statement) in one round trip."""
    check, params = credential_check(
        Credentials(
            bearer_key=key, tenant_header=TENANT, session_token=None, csrf_header=None,
            changes_state=False,
        )
    )  # fmt: skip
    found, rows = await Reads.on_connection(conn).run(
        Sql(check, params), lambda tenant: list_sql(tenant, query), TENANT
    )
    assert found == TENANT
    assert rows


async def deep_cursor(conn: psycopg.AsyncConnection[Any], offset: int) -> tuple[str, Any]:
    row = await (
        await conn.execute(
            "SELECT order_date, id FROM orders WHERE tenant_id = %s "
            "ORDER BY order_date DESC, id DESC OFFSET %s LIMIT 1",
            (TENANT, offset),
        )
    ).fetchone()
    assert row is not None
    return encode_cursor(SORTS["-orderDate"], row[0], row[1]), (row[0], row[1])


async def measure_api(url: str, count: int, samples: int) -> list[dict[str, Any]]:
    async with await psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True) as conn:
        await conn.execute("VACUUM ANALYZE orders")
        await conn.execute("VACUUM ANALYZE order_items")
        name = (
            await (
                await conn.execute(
                    "SELECT customer_name FROM orders WHERE tenant_id = %s OFFSET %s LIMIT 1",
                    (TENANT, count // 2),
                )
            ).fetchone()
            or ("",)
        )[0]
        cursor, position = await deep_cursor(conn, min(count - 60, int(count * 0.9)))
        key = await issue_key(url)
        scenarios: list[tuple[str, dict[str, Any], OrderQuery]] = [
            ("first page", {}, OrderQuery()),
            (
                "filter orderStatus=SHIPPED",
                {"orderStatus": "SHIPPED"},
                OrderQuery(order_status=(OrderStatus.SHIPPED,)),
            ),
            (f"search q={name!r}", {"q": name}, OrderQuery(q=name.lower())),
            ("deep cursor page (90 %)", {"cursor": cursor}, OrderQuery(after=position)),
        ]
        port = free_port()
        env = {
            **os.environ,
            "KEYBUZZ_DATABASE_URL": url,
            "KEYBUZZ_LOG_LEVEL": "WARNING",
            **UNMET_RATE_LIMITS,
        }
        server = subprocess.Popen(
            [sys.executable, "-m", "keybuzz.cli", "serve", "--port", str(port)], env=env
        )
        try:
            headers = {"Authorization": f"Bearer {key}", "X-Tenant-Id": TENANT}
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=10
            ) as client:
                await wait_ready(client)
                results = []
                for label, params, query in scenarios:

                    async def api_call(params: dict[str, Any] = params) -> None:
                        response = await client.get("/api/v1/orders", params=params)
                        response.raise_for_status()

                    async def sql_call(query: OrderQuery = query) -> None:
                        await raw_list(conn, key, query)

                    api = await time_calls(api_call, samples)
                    raw = await time_calls(sql_call, samples)
                    results.append(summary(label, api, raw))
        finally:
            server.terminate()
            server.wait(timeout=30)
    return results


async def issue_key(url: str) -> str:
    from keybuzz.tenants.service import issue_api_key

    engine = create_engine(url, pool_size=1)
    async with transaction(create_sessionmaker(engine)) as session:
        key = await issue_api_key(session, TENANT)
    await engine.dispose()
    return key


async def wait_ready(client: httpx.AsyncClient) -> None:
    for _ in range(300):
        try:
            if (await client.get("/readyz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("the API did not become ready")


def summary(label: str, api: list[float], raw: list[float]) -> dict[str, Any]:
    return {
        "query": label,
        "api_p50_ms": round(statistics.median(api), 2),
        "api_p99_ms": round(percentile(api, 99), 2),
        "sql_p50_ms": round(statistics.median(raw), 2),
        "sql_p99_ms": round(percentile(raw, 99), 2),
        "p99_ratio": round(percentile(api, 99) / percentile(raw, 99), 2),
    }


# --- Main ------------------------------------------------------------------------------------


async def run(url: str, count: int, samples: int) -> dict[str, Any]:
    print(f"Upserting {count:,} orders (≈{count * 2.5:,.0f} items) through the upsert path…")
    upsert_seconds = await fill_with_upsert(url, count)
    print("COPY of the same rows into empty copies of the tables (same indexes)…")
    copy_seconds = await fill_with_copy(url, count, indexed=True)
    print("COPY of the same rows into bare tables (no index), for reference…")
    bare_seconds = await fill_with_copy(url, count, indexed=False)
    print("Stored orders upserted again, changed…")
    changes = await time_changed_batches(url)
    print("API latency against raw SQL…")
    latency = await measure_api(url, count, samples)
    return {
        "orders": count,
        "upsert_orders_per_s": round(count / upsert_seconds),
        "copy_indexed_orders_per_s": round(count / copy_seconds),
        "copy_bare_orders_per_s": round(count / bare_seconds),
        "upsert_vs_copy_indexed": round(copy_seconds / upsert_seconds, 3),
        "upsert_vs_copy_bare": round(bare_seconds / upsert_seconds, 3),
        "changed_batches": changes,
        "latency": latency,
    }


def report_changes(changes: list[dict[str, Any]]) -> None:
    print()
    print(f"{'stored orders upserted again, changed':<40} {'orders':>7} {'seconds':>8}")
    for row in changes:
        print(f"{row['changed']:<40} {row['orders']:>7,} {row['seconds']:>8.2f}")


def report(result: dict[str, Any]) -> None:
    report_changes(result["changed_batches"])
    print()
    print(
        f"orders: {result['orders']:,}  (machine: {os.cpu_count()} cores; client and server "
        "share them)"
    )
    print(f"upsert                 {result['upsert_orders_per_s']:>9,} orders/s")
    print(
        f"COPY, same indexes     {result['copy_indexed_orders_per_s']:>9,} orders/s   "
        f"upsert/COPY = {result['upsert_vs_copy_indexed']:.0%}  (target >= 40 %)"
    )
    print(
        f"COPY, bare tables      {result['copy_bare_orders_per_s']:>9,} orders/s   "
        f"upsert/COPY = {result['upsert_vs_copy_bare']:.0%}"
    )
    print()
    print(
        f"{'GET /api/v1/orders':<34} {'API p50':>8} {'API p99':>8} {'SQL p50':>8} "
        f"{'SQL p99':>8} {'p99 ratio':>9}"
    )
    for row in result["latency"]:
        print(
            f"{row['query'][:34]:<34} {row['api_p50_ms']:>8} {row['api_p99_ms']:>8} "
            f"{row['sql_p50_ms']:>8} {row['sql_p99_ms']:>8} {row['p99_ratio']:>9}"
        )
    print("targets: API p99 <= 3x SQL p99 and < 50 ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument(
        "--changes-only", action="store_true", help="Only time the changed-orders upserts."
    )
    args = parser.parse_args()
    server = server_url()
    name, url = scratch_url(server)
    try:
        migrate(url)
        if args.changes_only:
            report_changes(asyncio.run(time_changed_batches(url)))
            return
        result = asyncio.run(run(url, args.orders, args.samples))
    finally:
        drop_database(server, name)
    report(result)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_orders.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""SP-API simulator benchmark: data generation (time, peak RSS) and page latency over loopback.

    python bench/bench_simulator.py [--sizes 10000,100000] [--serve-orders 100000] [--samples 400]

Generation runs once per size in a fresh child process, so each peak RSS is that size's alone
(target: 100,000 orders < 1 GB). Then the simulator serves ``--serve-orders`` orders from a
background thread (as ``SimulatorServer`` does for tests) and an httpx client in the same
process times pages of 100 orders (target: p50 and p99 < 20 ms). Results also go to
``bench/results/simulator.json``.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from keybuzz.simulator import Simulator, SimulatorServer, SimulatorSettings

RESULTS = Path(__file__).resolve().parent / "results" / "simulator.json"
LONG_AGO = "2000-01-01T00:00:00Z"
FR = "A13V1IB3VIYZZH"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generate(orders: int) -> dict[str, float]:
    """Run in a child process: build one seller of ``orders`` orders."""
    baseline = peak_rss_mb()
    started = time.perf_counter()
    simulator = Simulator(SimulatorSettings(orders=orders, days=90))
    seconds = time.perf_counter() - started
    items = sum(
        len(o.items)
        for o in simulator.sellers[simulator.settings.seller_id].book.visible(simulator.now())
    )
    return {
        "orders": orders,
        "items": items,
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "rss_before_mb": round(baseline, 1),
    }


def generate_in_child(orders: int) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, __file__, "--generate-only", str(orders)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, float] = json.loads(output)
    return result


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
    }


def access_token(server: SimulatorServer, http: httpx.Client) -> str:
    settings = server.settings
    response = http.post(
        "/auth/o2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": server.simulator.authorize(settings.seller_id).value,
            "client_id": settings.client_id,
            "client_secret": settings.client_secret.get_secret_value(),
        },
    )
    token: str = response.json()["access_token"]
    return token


def time_pages(fetch: Callable[[str | None], tuple[int, str | None]], samples: int) -> list[float]:
    """Time ``samples`` page fetches, walking the pages and starting over at the end."""
    timings: list[float] = []
    token: str | None = None
    while len(timings) < samples:
        started = time.perf_counter()
        count, token = fetch(token)
        timings.append(time.perf_counter() - started)
        assert count == 100 or token is None
    return timings


def serve(orders: int, samples: int) -> dict[str, Any]:
    settings = SimulatorSettings(orders=orders, days=90, rate_scale=1_000_000)
    results: dict[str, Any] = {"orders": orders, "samples": samples}
    with (
        SimulatorServer(settings) as server,
        httpx.Client(base_url=server.base_url, timeout=30) as http,
    ):
        headers = {"x-amz-access-token": access_token(server, http)}

        def search(included: str | None) -> Callable[[str | None], tuple[int, str | None]]:
            def fetch(token: str | None) -> tuple[int, str | None]:
                params = {"createdAfter": LONG_AGO, "maxResultsPerPage": "100"}
                if included:
                    params["includedData"] = included
                if token:
                    params["paginationToken"] = token
                body = http.get("/orders/2026-01-01/orders", params=params, headers=headers).json()
                return len(body["orders"]), body.get("pagination", {}).get("nextToken")

            return fetch

        def get_orders(token: str | None) -> tuple[int, str | None]:
            params = {"MarketplaceIds": FR, "CreatedAfter": LONG_AGO}
            if token:
                params["NextToken"] = token
            payload = http.get("/orders/v0/orders", params=params, headers=headers).json()[
                "payload"
            ]
            return len(payload["Orders"]), payload.get("NextToken")

        def by_update(token: str | None) -> tuple[int, str | None]:
            params = {"lastUpdatedAfter": LONG_AGO, "includedData": "FULFILLMENT,PROCEEDS"}
            if token:
                params["paginationToken"] = token
            body = http.get("/orders/2026-01-01/orders", params=params, headers=headers).json()
            return len(body["orders"]), body.get("pagination", {}).get("nextToken")

        cases = {
            "searchOrders_100": search(None),
            "searchOrders_100_buyer_recipient_proceeds_fulfillment": search(
                "BUYER,RECIPIENT,PROCEEDS,FULFILLMENT"
            ),
            "searchOrders_100_by_lastUpdated": by_update,
            "v0_getOrders_100": get_orders,
        }
        for name, fetch in cases.items():
            time_pages(fetch, 20)
            results[name] = percentiles(time_pages(fetch, samples))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--serve-orders", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--generate-only", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate_only is not None:
        print(json.dumps(generate(args.generate_only)))
        return

    generation = [generate_in_child(int(size)) for size in args.sizes.split(",")]
    for row in generation:
        print(
            f"generate {row['orders']:>7,} orders ({row['items']:,} items): "
            f"{row['seconds']:.2f} s, peak RSS {row['peak_rss_mb']:.0f} MB "
            f"(interpreter and imports {row['rss_before_mb']:.0f} MB)"
        )
    latency = serve(args.serve_orders, args.samples)
    for name, figures in latency.items():
        if isinstance(figures, dict):
            print(
                f"{name:<55} p50 {figures['p50_ms']:6.2f} ms  p99 {figures['p99_ms']:6.2f} ms"
                f"  max {figures['max_ms']:6.2f} ms"
            )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"generation": generation, "latency": latency}, indent=2))


if __name__ == "__main__":
    main()

"""The README's screenshots of the Orders page (docs/orders-list.png, docs/order-detail.png),
taken in Chromium from `keybuzz demo --auto`, as a user of `make run` sees the page.

    python bench/docs_screenshots.py [--orders 400]

The demo runs as a subprocess on a scratch database (the machine's PostgreSQL on 127.0.0.1:5432
when it answers, else the embedded server), with Amazon's rates scaled up so that the import is
over in seconds; it is stopped with Ctrl-C's signal and the database dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, expect, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_orders import drop_database, free_port, scratch_url, server_url

DOCS = Path(__file__).resolve().parents[1] / "docs"
TENANT = "ecomlg-001"


def start_demo(
    url: str, data_dir: Path, port: int, orders: int, log: Path
) -> subprocess.Popen[bytes]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("KEYBUZZ_")},
        "KEYBUZZ_DATABASE_URL": url,
        "KEYBUZZ_DATA_DIR": str(data_dir),
        "KEYBUZZ_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "keybuzz.cli", "demo", "--port", str(port), "--auto"]
    command += ["--orders", str(orders), "--rate-scale", "200"]
    with log.open("w") as output:
        return subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)


def api_key_of(demo: subprocess.Popen[bytes], log: Path) -> str:
    while True:
        found = re.search(r"export KB_KEY=(kb_\S+)", log.read_text())
        if found:
            return found.group(1)
        if demo.poll() is not None:
            raise SystemExit(f"the demo stopped:\n{log.read_text()[-2000:]}")
        time.sleep(0.2)


def wait_for_import(base_url: str, api_key: str) -> None:
    headers = {"Authorization": f"Bearer {api_key}", "X-Tenant-Id": TENANT}
    with httpx.Client(base_url=base_url, headers=headers, timeout=None) as api:
        while True:
            jobs = api.get("/api/v1/orders/backfill").json()["items"]
            if jobs and jobs[0]["status"] not in ("QUEUED", "RUNNING"):
                return
            time.sleep(0.5)


def an_order_worth_showing(base_url: str, api_key: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {api_key}", "X-Tenant-Id": TENANT}
    orders = httpx.get(
        f"{base_url}/api/v1/orders", params={"limit": 50, "orderStatus": "SHIPPED"}, headers=headers
    ).json()["items"]
    order: dict[str, Any] = next(
        o for o in orders if len(o["items"]) > 1 and o["shippingAddress"] and o["trackingCode"]
    )
    return order


def take(page: Page, base_url: str, api_key: str, order: dict[str, Any]) -> None:
    page.goto(f"{base_url}/orders")
    page.get_by_label("Clé d'API").fill(api_key)
    page.get_by_role("button", name="Se connecter").click()
    expect(page.locator("#orders-body tr")).to_have_count(50)
    page.screenshot(path=DOCS / "orders-list.png")
    page.locator(f'a[data-order-id="{order["id"]}"]').click()
    page.get_by_label("Statut SAV").select_option("IN_PROGRESS")
    page.get_by_role("button", name="Enregistrer le statut SAV").click()
    expect(page.locator("#detail-status")).to_have_text("Statut SAV enregistré.")
    page.locator("#detail-status").evaluate("node => node.textContent = ''")
    page.set_viewport_size({"width": 1440, "height": 1500})
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=DOCS / "order-detail.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=400)
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("Chromium is missing: apt-get install -y chromium")
    server = server_url()
    name, url = scratch_url(server)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as state:
        log = Path(state) / "demo.log"
        demo = start_demo(url, Path(state) / "data", port, args.orders, log)
        try:
            api_key = api_key_of(demo, log)
            wait_for_import(base_url, api_key)
            order = an_order_worth_showing(base_url, api_key)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium)
                context = browser.new_context(
                    locale="fr-FR",
                    timezone_id="Europe/Paris",
                    viewport={"width": 1440, "height": 900},
                )
                take(context.new_page(), base_url, api_key, order)
                browser.close()
        finally:
            demo.send_signal(signal.SIGINT)
            demo.wait(timeout=60)
            drop_database(server, name)
    print(f"Wrote {DOCS / 'orders-list.png'} and {DOCS / 'order-detail.png'}")


if __name__ == "__main__":
    main()

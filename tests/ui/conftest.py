"""One service, one simulated Amazon and one Chromium per test module; a fresh browser context
(no cookie, no storage) per test, which fails if the page's script raised an error.

Playwright waits for what a test expects (a row, a badge, 100 %); its two-minute limit is a hang
guard with a readable message, not a speed check: nothing here is timed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from keybuzz.simulator import SimulatorServer, SimulatorSettings
from tests.fixtures.browser import ServiceServer, chromium

RATE_SCALE = 200
HANG_GUARD_MILLISECONDS = 120_000
expect.set_options(timeout=HANG_GUARD_MILLISECONDS)


@pytest.fixture(scope="module")
def browser_amazon() -> Iterator[SimulatorServer]:
    """Amazon with no seller but those the tests create, at a rate the tests can wait for."""
    settings = SimulatorSettings(orders=0, rate_scale=RATE_SCALE, report_generation_seconds=1)
    with SimulatorServer(settings) as server:
        yield server


@pytest.fixture(scope="module")
def service(
    browser_amazon: SimulatorServer,
    module_database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServiceServer]:
    server = ServiceServer(browser_amazon, module_database_url, tmp_path_factory.mktemp("kb"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(locale="fr-FR", viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(HANG_GUARD_MILLISECONDS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"the page's script failed: {errors}"

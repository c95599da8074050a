"""A seller's first steps on the Orders page, in Chromium: connect Amazon through the simulated
Seller Central's consent and come back signed in, import the orders and watch the progress reach
100 %, cancel an import, and see a revoked authorization turn into a Reconnect banner."""

from __future__ import annotations

import itertools

from playwright.sync_api import Page, expect

from keybuzz.simulator import FaultSettings
from tests.factories import TenantCredentials
from tests.fixtures.browser import ServiceServer, order_rows, sign_in

_numbers = itertools.count(1)


def new_seller(service: ServiceServer, orders: int) -> tuple[TenantCredentials, str]:
    """A tenant of the test's own and the Amazon seller the consent will sign in."""
    number = next(_numbers)
    tenant = service.tenant(f"seller-{number:03d}")
    seller_id = service.seller(f"AKBFLOW{number:06d}", orders=orders)
    return tenant, seller_id


def test_a_new_seller_is_told_to_connect_amazon_first(page: Page, service: ServiceServer) -> None:
    tenant, _ = new_seller(service, orders=5)

    sign_in(page, service, tenant)

    expect(page.locator("#connection")).to_contain_text("Votre compte Amazon n'est pas connecté.")
    expect(page.get_by_role("button", name="Connecter Amazon")).to_be_visible()
    expect(page.locator("#list-message")).to_contain_text("Connectez votre compte Amazon")
    expect(page.get_by_role("button", name="Lancer l'import")).to_be_disabled()
    expect(page.locator("#backfill-hint")).to_be_visible()


def test_a_seller_connects_amazon_through_the_consent_and_comes_back(
    page: Page, service: ServiceServer
) -> None:
    tenant, seller_id = new_seller(service, orders=5)
    sign_in(page, service, tenant, "?q=Martin")
    page.get_by_label("Région Amazon").select_option("EU")
    page.get_by_role("button", name="Connecter Amazon").click()

    expect(page.locator("#notice")).to_have_text(
        "Votre compte Amazon est connecté. Vous pouvez lancer l'import."
    )
    expect(page.locator("#connection")).to_contain_text("Connecté")
    expect(page.locator("#connection")).to_contain_text(f"Vendeur {seller_id}")
    expect(page.locator("#connection")).to_contain_text("À jour au")
    expect(page.get_by_role("button", name="Lancer l'import")).to_be_enabled()
    expect(page.get_by_role("searchbox", name="Recherche")).to_have_value("Martin")
    assert page.url == f"{service.base_url}/orders?q=Martin"


def test_a_seller_imports_the_orders_and_watches_the_progress_to_100(
    page: Page, service: ServiceServer
) -> None:
    tenant, _ = new_seller(service, orders=120)
    service.connect(tenant)
    sign_in(page, service, tenant)
    expect(page.locator("#list-message")).to_contain_text("Lancez l'import")

    page.get_by_label("Nombre de jours").fill("90")
    page.get_by_role("button", name="Lancer l'import").click()

    expect(page.locator("#backfill-progress")).to_be_visible()
    expect(page.locator("#backfill-percent")).to_have_text("100 %")
    expect(page.locator("#backfill-phase")).to_have_text("Import terminé")
    expect(page.locator("#backfill-bar")).to_have_attribute("value", "100")
    expect(page.locator("#backfill-summary")).to_contain_text("terminé")
    imported = service.orders(tenant)
    expect(page.locator("#backfill-counts")).to_contain_text(f"{len(imported)} commandes et")
    expect(order_rows(page)).to_have_count(min(50, len(imported)))
    expect(page.get_by_role("button", name="Lancer l'import")).to_be_enabled()


def test_a_seller_cancels_an_import(page: Page, service: ServiceServer) -> None:
    tenant, _ = new_seller(service, orders=30)
    service.connect(tenant)
    sign_in(page, service, tenant)
    slow_reports = FaultSettings(
        slow_rate=1.0, slow_seconds=5, operations=["reports.createReport", "reports.getReport"]
    )
    service.amazon.simulator.set_faults(slow_reports)
    try:
        page.get_by_role("button", name="Lancer l'import").click()
        expect(page.locator("#backfill-phase")).to_contain_text("Lecture des rapports")

        page.get_by_role("button", name="Annuler l'import").click()

        expect(page.locator("#backfill-phase")).to_have_text("Import annulé")
        expect(page.get_by_role("button", name="Annuler l'import")).to_be_hidden()
        expect(page.locator("#backfill-summary")).to_contain_text("annulé")
        expect(page.get_by_role("button", name="Lancer l'import")).to_be_enabled()
    finally:
        service.amazon.simulator.set_faults(FaultSettings())


def test_a_revoked_authorization_turns_into_a_reconnect_banner(
    page: Page, service: ServiceServer
) -> None:
    tenant, seller_id = new_seller(service, orders=5)
    service.connect(tenant)
    sign_in(page, service, tenant)
    expect(page.locator("#connection")).to_contain_text("Connecté")

    service.amazon.simulator.revoke(seller_id)
    with service.api(tenant) as api:  # what the hourly check (or the next sync) does
        api.post("/api/v1/marketplaces/amazon/check").raise_for_status()
    page.reload()

    banner = page.locator("#connection")
    expect(banner.locator('.badge[data-value="NEEDS_RECONNECT"]')).to_have_text("À reconnecter")
    expect(banner).to_contain_text("Amazon refused the stored authorization")
    expect(page.get_by_role("button", name="Lancer l'import")).to_be_disabled()

    page.get_by_role("button", name="Reconnecter Amazon").click()

    expect(banner.locator('.badge[data-value="CONNECTED"]')).to_be_visible()
    expect(page.get_by_role("button", name="Reconnecter Amazon")).to_be_hidden()

"""An agent's day on the Orders page, in Chromium, on orders imported from the simulated Amazon:
sign in, read the list, search, filter, open an order, change its after-sales status, switch
language, sign out; and every request the page makes goes to this site's own routes."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Page, Request, expect

from tests.factories import TenantCredentials
from tests.fixtures.browser import ServiceServer, order_rows, sign_in, wait_for_list

PARIS = ZoneInfo("Europe/Paris")
SELLER_ORDERS = 70
PAGE_SIZE = 50


@dataclass(frozen=True)
class Shop:
    tenant: TenantCredentials
    orders: list[dict[str, Any]]
    """As the API lists them, newest first."""


@pytest.fixture(scope="module")
def shop(service: ServiceServer) -> Shop:
    """A tenant whose Amazon orders are imported (through the API, as the demo's --auto)."""
    tenant = service.tenant("agents-001")
    service.seller("AKBAGENTS0001", orders=SELLER_ORDERS)
    service.connect(tenant)
    assert service.import_orders(tenant)["status"] == "SUCCEEDED"
    return Shop(tenant, service.orders(tenant))


def row_of(page: Page, order: dict[str, Any]) -> Any:
    return page.locator(f'#orders-body tr[data-order-id="{order["id"]}"]')


def test_an_agent_signs_in_with_the_api_key(page: Page, service: ServiceServer, shop: Shop) -> None:
    page.goto(f"{service.base_url}/")
    expect(page.get_by_role("heading", name="Connexion")).to_be_visible()
    page.get_by_label("Clé d'API").fill("kb_notTheKeyOfAnyone")
    page.get_by_role("button", name="Se connecter").click()
    expect(page.get_by_role("alert")).to_contain_text("inconnue ou révoquée")

    page.get_by_label("Clé d'API").fill(shop.tenant.api_key)
    page.get_by_role("button", name="Se connecter").click()

    expect(page.locator(".tenant")).to_contain_text("agents-001")
    expect(order_rows(page)).to_have_count(PAGE_SIZE)
    expect(page.locator("#connection")).to_contain_text("Connecté")
    [cookie] = [c for c in page.context.cookies() if c["name"] == "kb_session"]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"


def test_the_list_shows_the_orders_as_the_api_has_them(
    page: Page, service: ServiceServer, shop: Shop
) -> None:
    sign_in(page, service, shop.tenant)
    newest = shop.orders[0]

    row = order_rows(page).first
    expect(row).to_contain_text(newest["orderRef"])
    for field in ("orderStatus", "savStatus", "slaStatus"):
        expect(
            row.locator(f'.badge[data-field="{field}"][data-value="{newest[field]}"]')
        ).to_have_count(1)
    enriched = next(
        order for order in shop.orders if order["customerName"] and order["totalAmount"]
    )
    enriched_row = row_of(page, enriched)
    expect(enriched_row).to_contain_text(enriched["customerName"])
    expect(enriched_row).to_contain_text(enriched["totalAmount"].replace(".", ","))
    expect(page.locator("#list-status")).to_contain_text(f"{PAGE_SIZE} commandes affichées")

    page.get_by_role("button", name="Charger plus de commandes").click()

    expect(order_rows(page)).to_have_count(len(shop.orders))
    expect(page.get_by_role("button", name="Charger plus de commandes")).to_be_hidden()
    shown = page.locator("#orders-body tr").evaluate_all("rows => rows.map(r => r.dataset.orderId)")
    assert shown == [order["id"] for order in shop.orders]


def test_an_agent_finds_an_order_by_its_customers_name(
    page: Page, service: ServiceServer, shop: Shop
) -> None:
    names = Counter(order["customerName"] for order in shop.orders if order["customerName"])
    name = next(name for name, count in names.items() if count == 1)
    expected = service.orders(shop.tenant, q=name)
    sign_in(page, service, shop.tenant)
    wait_for_list(page)

    page.get_by_role("searchbox", name="Recherche").fill(name)

    expect(order_rows(page)).to_have_count(len(expected))
    expect(order_rows(page).first).to_contain_text(name)
    expect(page).to_have_url(re.compile(r"[?&]q="))
    assert parse_qs(urlsplit(page.url).query) == {"q": [name]}


def test_a_search_too_short_says_so(page: Page, service: ServiceServer, shop: Shop) -> None:
    sign_in(page, service, shop.tenant)
    wait_for_list(page)

    page.get_by_role("searchbox", name="Recherche").fill("ab")

    expect(page.locator("#list-status")).to_contain_text("au moins 3 caractères")


def test_an_agent_filters_by_status_and_the_link_keeps_the_filter(
    page: Page, service: ServiceServer, shop: Shop
) -> None:
    status = Counter(order["orderStatus"] for order in shop.orders).most_common(1)[0][0]
    expected = service.orders(shop.tenant, orderStatus=status)
    sign_in(page, service, shop.tenant)
    wait_for_list(page)

    page.get_by_label("Statut de commande").select_option(status)

    expect(order_rows(page)).to_have_count(min(len(expected), PAGE_SIZE))
    expect(
        page.locator(f'#orders-body .badge[data-field="orderStatus"][data-value="{status}"]')
    ).to_have_count(min(len(expected), PAGE_SIZE))
    expect(page).to_have_url(re.compile(f"orderStatus={status}"))
    page.reload()
    expect(page.get_by_label("Statut de commande")).to_have_value(status)
    expect(order_rows(page)).to_have_count(min(len(expected), PAGE_SIZE))
    page.get_by_role("link", name="Effacer les filtres").first.click()
    expect(order_rows(page)).to_have_count(PAGE_SIZE)
    expect(page).to_have_url(f"{service.base_url}/orders")


def test_an_agent_narrows_the_list_to_a_day_and_sorts_it(
    browser: Browser, service: ServiceServer, shop: Shop
) -> None:
    context = browser.new_context(locale="fr-FR", timezone_id="Europe/Paris")
    page = context.new_page()
    day = dt.datetime.fromisoformat(shop.orders[3]["orderDate"]).astimezone(PARIS).date()
    start = dt.datetime.combine(day, dt.time(), PARIS)
    expected = service.orders(
        shop.tenant,
        **{"from": start.isoformat(), "to": (start + dt.timedelta(days=1)).isoformat()},
    )
    sign_in(page, service, shop.tenant)
    wait_for_list(page)

    page.get_by_label("Du").fill(day.isoformat())
    page.get_by_label("Au (inclus)").fill(day.isoformat())
    expect(order_rows(page)).to_have_count(len(expected))
    page.get_by_label("Trier par").select_option("orderDate")

    expect(order_rows(page).first).to_contain_text(expected[-1]["orderRef"])
    expect(page).to_have_url(re.compile(f"from={day}&to={day}&sort=orderDate"))
    context.close()


def test_an_agent_opens_an_order_with_the_keyboard(
    page: Page, service: ServiceServer, shop: Shop
) -> None:
    order = next(
        o for o in shop.orders if o["items"] and o["shippingAddress"] and o["customerName"]
    )
    sign_in(page, service, shop.tenant)
    link = row_of(page, order).get_by_role("link")

    link.focus()
    page.keyboard.press("Enter")

    detail = page.locator("#detail")
    expect(detail.get_by_role("heading", level=2)).to_have_text(f"Commande {order['orderRef']}")
    expect(detail.get_by_role("heading", level=2)).to_be_focused()
    for item in order["items"]:
        expect(detail.locator("table.items")).to_contain_text(item["sku"])
    expect(detail.locator(".address")).to_contain_text(order["shippingAddress"]["city"])
    expect(detail).to_contain_text("Expédier avant le")
    expect(detail).to_contain_text("N° de suivi")
    expect(detail).to_contain_text("Historique")
    expect(page).to_have_url(re.compile(f"order={order['id']}"))

    page.keyboard.press("Escape")

    expect(detail).to_be_hidden()
    expect(link).to_be_focused()


def test_an_order_is_refreshed_from_amazon(page: Page, service: ServiceServer, shop: Shop) -> None:
    order = shop.orders[5]
    sign_in(page, service, shop.tenant, f"?order={order['id']}")

    page.get_by_role("button", name="Actualiser depuis Amazon").click()

    expect(page.locator("#detail-status")).to_have_text("Commande actualisée depuis Amazon.")


def test_an_agent_changes_the_after_sales_status(
    page: Page, service: ServiceServer, shop: Shop
) -> None:
    order = shop.orders[1]
    sign_in(page, service, shop.tenant)
    row_of(page, order).get_by_role("link").click()
    detail = page.locator("#detail")

    detail.get_by_label("Statut SAV").select_option("IN_PROGRESS")
    detail.get_by_role("button", name="Enregistrer le statut SAV").click()

    expect(page.locator("#detail-status")).to_have_text("Statut SAV enregistré.")
    expect(detail.locator(".timeline")).to_contain_text("SAV : Aucun → En cours")
    expect(detail.locator(".timeline")).to_contain_text("par un agent")
    expect(
        row_of(page, order).locator('.badge[data-field="savStatus"][data-value="IN_PROGRESS"]')
    ).to_have_count(1)
    [stored] = [o for o in service.orders(shop.tenant) if o["id"] == order["id"]]
    assert stored["savStatus"] == "IN_PROGRESS"


def test_the_page_speaks_english_once_chosen_and_remembers_it(
    page: Page, service: ServiceServer, shop: Shop
) -> None:
    sign_in(page, service, shop.tenant)
    wait_for_list(page)

    page.get_by_role("link", name="English").click()

    expect(page.get_by_role("heading", name="Orders", exact=True)).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#list-status")).to_contain_text("orders shown")
    expect(page.get_by_role("button", name="Start the import")).to_be_visible()
    expect(page).to_have_url(f"{service.base_url}/orders")
    page.reload()
    expect(page.get_by_role("button", name="Load more orders")).to_be_visible()

    page.get_by_role("link", name="Français").click()

    expect(page.get_by_role("heading", name="Commandes", exact=True)).to_be_visible()


def test_a_failed_list_says_what_happened_and_offers_to_try_again(
    page: Page, service: ServiceServer, shop: Shop
) -> None:
    failing = '{"type": "about:blank", "title": "Service unavailable", "status": 503,'
    failing += ' "code": "database_unavailable", "detail": "The database is unreachable."}'
    page.route(
        re.compile(r"/api/v1/orders\?"),
        lambda route: route.fulfill(
            status=503, body=failing, content_type="application/problem+json"
        ),
    )
    sign_in(page, service, shop.tenant)

    expect(page.get_by_role("alert")).to_contain_text("The database is unreachable.")
    page.unroute(re.compile(r"/api/v1/orders\?"))
    page.get_by_role("button", name="Réessayer").click()

    expect(order_rows(page)).to_have_count(PAGE_SIZE)
    expect(page.get_by_role("alert")).to_have_count(0)


def test_a_link_opened_from_another_site_lands_on_the_list_signed_in(
    page: Page, service: ServiceServer, shop: Shop
) -> None:
    """A shared link in an e-mail or the helpdesk: the browser leaves the SameSite=Strict
    session cookie out of a navigation another site starts; the page reloads itself."""
    order = shop.orders[4]
    sign_in(page, service, shop.tenant)
    wait_for_list(page)
    link = f"{service.base_url}/orders?q={order['orderRef']}"
    another_site = service.amazon.base_url.replace("127.0.0.1", "localhost")
    page.goto(f"{another_site}/apps/authorize/consent")  # any page of another site
    opened: list[str] = []
    page.on("request", lambda r: opened.append(r.url) if r.is_navigation_request() else None)

    page.evaluate("link => { window.location.href = link; }", link)

    expect(order_rows(page)).to_have_count(1)
    assert opened == [link, link]  # the page without the cookie, then its own reload
    expect(order_rows(page)).to_contain_text(order["orderRef"])
    expect(page.locator(".tenant")).to_contain_text(shop.tenant.id)


def test_an_agent_signs_out(page: Page, service: ServiceServer, shop: Shop) -> None:
    sign_in(page, service, shop.tenant)
    wait_for_list(page)

    page.get_by_role("button", name="Se déconnecter").click()

    expect(page.get_by_role("status")).to_contain_text("Vous êtes déconnecté.")
    assert not [c for c in page.context.cookies() if c["name"] == "kb_session"]
    page.go_back()
    expect(page.get_by_label("Clé d'API")).to_be_visible()


# WCAG 2 contrast of every visible text against the background it is drawn on, and the
# accessible name of every control; run in the page (DevTools' evaluation, which the page's
# Content-Security-Policy does not restrict).
AUDIT = """() => {
  const luminance = (rgb) => {
    const [r, g, b] = rgb.map((c) => {
      const v = c / 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const channels = (colour) => colour.match(/[\\d.]+/g).map(Number);
  const background = (node) => {
    for (let at = node; at; at = at.parentElement) {
      const colour = channels(getComputedStyle(at).backgroundColor);
      if (colour.length < 4 || colour[3] > 0) return colour.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const low = [];
  for (const node of document.querySelectorAll("body *")) {
    const own = [...node.childNodes].some((c) => c.nodeType === 3 && c.textContent.trim());
    if (!own || !node.checkVisibility()) continue;
    const style = getComputedStyle(node);
    const [l1, l2] = [luminance(channels(style.color).slice(0, 3)), luminance(background(node))];
    const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) low.push(`${node.className}: ${ratio.toFixed(2)}`);
  }
  const unnamed = [...document.querySelectorAll("input:not([type=hidden]), select, button, a")]
    .filter((c) => c.checkVisibility())
    .filter((c) => !(c.labels?.length || c.getAttribute("aria-label") || c.textContent.trim()))
    .map((c) => c.outerHTML.slice(0, 80));
  return { low, unnamed };
}"""


def test_every_text_is_readable_and_every_control_named(
    page: Page, service: ServiceServer, shop: Shop
) -> None:
    order = next(o for o in shop.orders if o["items"] and o["shippingAddress"])
    sign_in(page, service, shop.tenant, f"?order={order['id']}")
    expect(page.locator("#detail .timeline, #detail .muted").first).to_be_visible()
    wait_for_list(page)

    audit = page.evaluate(AUDIT)

    assert audit == {"low": [], "unnamed": []}


def test_every_request_the_page_makes_goes_to_this_sites_own_routes(
    page: Page, service: ServiceServer, shop: Shop
) -> None:
    requests: list[Request] = []
    page.on("request", lambda request: requests.append(request))
    order = shop.orders[2]

    sign_in(page, service, shop.tenant)
    wait_for_list(page)
    page.get_by_role("button", name="Charger plus de commandes").click()
    page.get_by_label("Statut de commande").select_option(order["orderStatus"])
    page.get_by_role("searchbox", name="Recherche").fill(order["orderRef"])
    expect(order_rows(page)).to_have_count(1)
    order_rows(page).get_by_role("link").click()
    page.get_by_label("Statut SAV").select_option("OPEN")
    page.get_by_role("button", name="Enregistrer le statut SAV").click()
    expect(page.locator("#detail-status")).to_have_text("Statut SAV enregistré.")
    page.get_by_role("link", name="English").click()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("API key")).to_be_visible()

    origin = urlsplit(service.base_url)
    outside = [
        f"{r.method} {r.url}"
        for r in requests
        if (urlsplit(r.url).scheme, urlsplit(r.url).netloc) != (origin.scheme, origin.netloc)
        or not own_route(urlsplit(r.url).path)
    ]
    assert outside == []
    api_calls = {urlsplit(r.url).path for r in requests if r.resource_type == "fetch"}
    assert all(path.startswith("/api/v1/") for path in api_calls), api_calls
    assert {"/api/v1/orders", "/api/v1/marketplaces", f"/api/v1/orders/{order['id']}"} <= api_calls


def own_route(path: str) -> bool:
    return path == "/" or path.startswith(("/api/v1/", "/orders", "/static/"))

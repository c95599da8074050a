"""The Orders page's own routes over HTTP: sign in with an API key for a session cookie, sign
out, French unless English is chosen, the static files, and headers that let only this site's
script and style sheet run."""

from __future__ import annotations

import dataclasses
import logging
import re
from http.cookies import SimpleCookie

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.config import Settings
from keybuzz.runtime import Runtime
from keybuzz.ui.assets import ASSETS
from keybuzz.ui.pages import CONTENT_SECURITY_POLICY
from tests.factories import TenantCredentials
from tests.fixtures.apps import app_on
from tests.fixtures.sessions import page_csrf, sign_in, sign_in_form_token, submit_sign_in

PAGE = "text/html; charset=utf-8"


def set_cookies(response: httpx.Response) -> dict[str, SimpleCookie]:
    cookies = {}
    for header in response.headers.get_list("set-cookie"):
        cookie: SimpleCookie = SimpleCookie()
        cookie.load(header)
        cookies.update({name: cookie for name in cookie})
    return cookies


async def test_the_home_page_is_the_orders_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/")

    assert response.status_code == 307
    assert response.headers["location"] == "/orders"


async def test_a_browser_without_a_session_gets_the_sign_in_form_in_french(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/orders")

    assert response.status_code == 200
    assert response.headers["content-type"] == PAGE
    assert '<html lang="fr">' in response.text
    assert "Clé d&#39;API" in response.text
    assert 'name="apiKey"' in response.text


async def test_the_pages_run_only_this_sites_script_and_style_sheet(
    client: httpx.AsyncClient, tenant: TenantCredentials
) -> None:
    await sign_in(client, tenant.api_key)

    page = await client.get("/orders")
    policy = page.headers["content-security-policy"]

    assert policy == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in policy
    assert "style-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    scripts = re.findall(r"<script([^>]*)>", page.text)
    assert scripts, page.text
    assert all("src=" in tag or 'type="application/json"' in tag for tag in scripts), scripts
    assert " style=" not in page.text
    assert "<style" not in page.text


async def test_signing_in_exchanges_the_key_for_a_strict_http_only_cookie(
    client: httpx.AsyncClient, tenant: TenantCredentials
) -> None:
    response = await submit_sign_in(client, tenant.api_key, next_path="/orders?q=Martin")

    assert response.status_code == 303
    assert response.headers["location"] == "/orders?q=Martin"
    cookie = set_cookies(response)["kb_session"]["kb_session"]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "strict"
    assert cookie["path"] == "/"
    assert not cookie["secure"]  # the public URL is http://
    assert tenant.api_key not in response.headers.get("set-cookie", "")
    page = await client.get("/orders")
    assert tenant.id in page.text
    assert 'id="page-config"' in page.text


async def test_the_cookie_is_secure_when_the_public_url_is_https(
    runtime: Runtime, session: AsyncSession, settings: Settings, tenant: TenantCredentials
) -> None:
    https = settings.model_copy(update={"public_url": "https://kb.example"})
    secure = dataclasses.replace(runtime, settings=https)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app_on(secure, session)), base_url="https://testserver"
    ) as client:
        response = await submit_sign_in(client, tenant.api_key)

    assert set_cookies(response)["kb_session"]["kb_session"]["secure"] is True


async def test_a_bad_key_says_so_and_logs_nothing_secret(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    wrong_key = "kb_thisIsNotAKeyOfAnyTenant0123456789abcdef"

    with caplog.at_level(logging.DEBUG):
        response = await submit_sign_in(client, wrong_key)

    assert response.status_code == 401
    assert "inconnue ou révoquée" in response.text
    assert 'aria-invalid="true"' in response.text
    assert wrong_key not in response.text
    assert "kb_session" not in set_cookies(response)
    assert all(wrong_key not in record.getMessage() for record in caplog.records)


async def test_a_sign_in_posted_by_another_site_is_refused(
    client: httpx.AsyncClient, tenant: TenantCredentials
) -> None:
    """Without the form's token (its cookie is SameSite=Strict) another site cannot sign a
    browser in to an account of its choosing."""
    response = await client.post(
        "/orders/sign-in", data={"apiKey": tenant.api_key, "signInToken": "guessed"}
    )
    await sign_in_form_token(client)  # the form's cookie, then another value
    not_ascii = await client.post(
        "/orders/sign-in", data={"apiKey": tenant.api_key, "signInToken": "jeton-é"}
    )

    assert response.status_code == not_ascii.status_code == 400
    assert "kb_session" not in set_cookies(response)


async def test_sign_in_never_sends_the_browser_to_another_site(
    client: httpx.AsyncClient, tenant: TenantCredentials
) -> None:
    response = await submit_sign_in(client, tenant.api_key, next_path="//evil.example/orders")

    assert response.status_code == 303
    assert response.headers["location"] == "/orders"


async def test_signing_out_ends_the_session(
    client: httpx.AsyncClient, tenant: TenantCredentials
) -> None:
    csrf = await sign_in(client, tenant.api_key)
    old_cookie = client.cookies["kb_session"]

    response = await client.post("/orders/sign-out", data={"csrf": csrf})

    assert response.status_code == 303
    assert response.headers["location"] == "/orders?signedOut=1"
    assert "Vous êtes déconnecté" in (await client.get(response.headers["location"])).text
    client.cookies.set("kb_session", old_cookie)
    assert (await client.get("/api/v1/orders")).status_code == 401


async def test_signing_out_needs_the_pages_token(
    client: httpx.AsyncClient, tenant: TenantCredentials
) -> None:
    await sign_in(client, tenant.api_key)

    response = await client.post("/orders/sign-out", data={"csrf": "forged"})

    assert response.status_code == 403
    assert (await client.get("/api/v1/orders")).status_code == 200


async def test_an_ended_session_shows_the_sign_in_form_again(
    client: httpx.AsyncClient, tenant: TenantCredentials
) -> None:
    client.cookies.set("kb_session", "ended-or-forged")

    response = await client.get("/orders")

    assert "Votre session a pris fin" in response.text
    assert 'kb_session=""' in response.headers["set-cookie"]


async def test_a_browser_sent_by_another_site_reloads_the_page_as_its_own(
    client: httpx.AsyncClient,
) -> None:
    """Back from Amazon's consent (or a link in an e-mail) the browser leaves out the
    SameSite=Strict cookie; the page reloads itself, which carries it."""
    response = await client.get(
        "/orders?q=Martin&amazon=connected", headers={"Sec-Fetch-Site": "cross-site"}
    )

    assert response.status_code == 200
    assert '<meta http-equiv="refresh" content="0;url=/orders?q=Martin&amp;amazon=connected">' in (
        response.text
    )
    assert 'name="apiKey"' not in response.text


async def test_english_is_chosen_and_remembered(client: httpx.AsyncClient) -> None:
    chosen = await client.get("/orders?lang=en")
    later = await client.get("/orders")

    assert '<html lang="en">' in chosen.text
    assert "API key" in chosen.text
    assert set_cookies(chosen)["kb_lang"]["kb_lang"].value == "en"
    assert '<html lang="en">' in later.text
    assert '<html lang="fr">' in (await client.get("/orders?lang=fr")).text


async def test_an_unknown_language_is_french(client: httpx.AsyncClient) -> None:
    response = await client.get("/orders?lang=xx")

    assert '<html lang="fr">' in response.text


async def test_the_page_keeps_the_filters_of_its_url(
    client: httpx.AsyncClient, tenant: TenantCredentials
) -> None:
    await sign_in(client, tenant.api_key)

    page = await client.get(
        "/orders",
        params={
            "q": "Martin",
            "orderStatus": "SHIPPED",
            "savStatus": "NOT_A_STATUS",
            "from": "2026-11-01",
            "to": "garbage",
            "sort": "orderDate",
        },
    )

    assert 'value="Martin"' in page.text
    assert "selected" in select(page.text, "orderStatus").split('value="SHIPPED"')[1][:20]
    assert "selected" not in select(page.text, "savStatus")
    assert 'id="filter-from" name="from" type="date" value="2026-11-01"' in page.text
    assert 'id="filter-to" name="to" type="date" value=""' in page.text
    assert "selected" in select(page.text, "sort").split('value="orderDate"')[1][:20]


def select(html: str, name: str) -> str:
    found = re.search(rf'<select id="filter-{name}"[\s\S]*?</select>', html)
    assert found, name
    return found.group(0)


async def test_the_sign_in_form_comes_back_to_the_link_that_was_opened(
    client: httpx.AsyncClient,
) -> None:
    await sign_in_form_token(client, "/orders?q=Martin&orderStatus=SHIPPED&lang=en")

    page = await client.get("/orders?q=Martin&orderStatus=SHIPPED")

    assert 'name="next" value="/orders?q=Martin&amp;orderStatus=SHIPPED"' in page.text


@pytest.mark.parametrize("name", sorted(ASSETS))
async def test_static_files_are_served_and_kept_while_unchanged(
    client: httpx.AsyncClient, name: str
) -> None:
    asset = ASSETS[name]

    versioned = await client.get(f"/static/{name}", params={"v": asset.version})
    unversioned = await client.get(f"/static/{name}")

    assert versioned.status_code == 200
    assert versioned.content == asset.content
    assert versioned.headers["content-type"] == asset.media_type
    assert versioned.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert unversioned.headers["cache-control"] == "no-cache"


async def test_an_unknown_static_file_is_a_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/static/../../config.py")
    missing = await client.get("/static/nothing.js")

    assert response.status_code == 404
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


async def test_the_orders_page_documents_nothing_in_the_api_reference(app: FastAPI) -> None:
    paths = app.openapi()["paths"]
    outside_api = [path for path in paths if not path.startswith("/api/")]

    assert set(outside_api) <= {"/healthz", "/readyz"}


async def test_the_page_csrf_token_is_the_one_the_api_wants(
    client: httpx.AsyncClient, tenant: TenantCredentials
) -> None:
    await sign_in(client, tenant.api_key)
    csrf = await page_csrf(client)

    response = await client.post(
        "/api/v1/orders/backfill", json={"days": 1}, headers={"X-CSRF-Token": csrf}
    )

    assert response.status_code == 409
    assert response.json()["code"] == "amazon_not_connected"

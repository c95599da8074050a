"""The Orders page and its own routes: sign in with an API key, sign out, the static files.

The page itself is a shell: its script reads and changes everything through ``/api/v1/...``
with the session cookie this module sets (``keybuzz.deps.get_tenant`` accepts it there).
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import secrets
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Cookie, Form, Header, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from keybuzz.amazon.regions import MARKETPLACES, Region
from keybuzz.config import Settings
from keybuzz.deps import CSRF_HEADER, SESSION_COOKIE, RuntimeDep, SessionDep
from keybuzz.errors import InvalidInput, NotFound, Unauthenticated
from keybuzz.marketplaces.oauth import safe_return_path
from keybuzz.tenants import service as tenants
from keybuzz.tenants.models import TenantId
from keybuzz.tenants.service import CsrfTokenInvalid
from keybuzz.ui.assets import ASSETS
from keybuzz.ui.i18n import LANGUAGE_COOKIE, MESSAGES, Language, language_of
from keybuzz.ui.pages import SECURITY_HEADERS, render
from keybuzz.ui.schemas import SORTS, STATUS_FILTERS, PageFilters

logger = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

ORDERS_PATH = "/orders"
SIGN_IN_COOKIE = "kb_sign_in"
"""The sign-in form's own anti-forgery token (double submit): another site cannot sign a
browser in to an account of its choosing."""
ONE_YEAR = 365 * 24 * 3600
IMMUTABLE = "public, max-age=31536000, immutable"
ONE_TIME_PARAMETERS = frozenset({"lang", "signedOut"})

LanguageCookie = Annotated[str | None, Cookie(alias=LANGUAGE_COOKIE)]
SessionCookie = Annotated[str | None, Cookie(alias=SESSION_COOKIE)]
LanguageQuery = Annotated[str | None, Query(max_length=5)]


class AssetNotFound(NotFound):
    code = "asset_not_found"
    title = "No such file"


@router.get("/")
async def home() -> RedirectResponse:
    return RedirectResponse(ORDERS_PATH, status_code=307)


@router.get(ORDERS_PATH, response_class=HTMLResponse)
async def orders_page(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    session_token: SessionCookie = None,
    language_cookie: LanguageCookie = None,
    lang: LanguageQuery = None,
    fetch_site: Annotated[str | None, Header(alias="Sec-Fetch-Site")] = None,
    sign_in_token: Annotated[str | None, Cookie(alias=SIGN_IN_COOKIE)] = None,
) -> HTMLResponse:
    """The page for a signed-in browser, else the sign-in form."""
    language = language_of(lang or language_cookie)
    settings = runtime.settings
    tenant_id = await tenants.tenant_of_session(session, session_token) if session_token else None
    if tenant_id is not None and session_token is not None:
        response = _orders_view(request, language, tenant_id, session_token)
    elif session_token is None and fetch_site == "cross-site":
        response = _continue_here(request, language)
    else:
        notice = "signIn.expired" if session_token else _sign_in_notice(request)
        response = _sign_in_view(request, settings, language, sign_in_token, notice)
        if session_token:
            _forget_session(response, settings)
    if lang is not None:
        _remember_language(response, language)
    return response


@router.post(f"{ORDERS_PATH}/sign-in", response_class=HTMLResponse)
async def sign_in(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    api_key: Annotated[str, Form(alias="apiKey", max_length=200)] = "",
    form_token: Annotated[str, Form(alias="signInToken", max_length=100)] = "",
    next_path: Annotated[str, Form(alias="next", max_length=2000)] = ORDERS_PATH,
    sign_in_token: Annotated[str | None, Cookie(alias=SIGN_IN_COOKIE)] = None,
    language_cookie: LanguageCookie = None,
) -> Response:
    """Exchange the API key for a session cookie; a bad key is said as such, never logged."""
    settings = runtime.settings
    language = language_of(language_cookie)
    if not sign_in_token or not _same(form_token, sign_in_token):
        return _sign_in_view(
            request, settings, language, None, "signIn.formExpired", 400, next_path
        )
    try:
        signed_in = await tenants.sign_in(session, api_key.strip(), _session_lifetime(settings))
    except Unauthenticated:
        logger.info("Orders page: sign-in refused (unknown or revoked API key)")
        return _sign_in_view(
            request, settings, language, sign_in_token, "signIn.badKey", 401, next_path
        )
    logger.info("Orders page: tenant %s signed in", signed_in.tenant_id)
    response = RedirectResponse(_local_path(next_path), status_code=303, headers=SECURITY_HEADERS)
    response.set_cookie(
        SESSION_COOKIE,
        signed_in.session_token,
        max_age=int(_session_lifetime(settings).total_seconds()),
        path="/",
        httponly=True,
        secure=_secure(settings),
        samesite="strict",
    )
    response.delete_cookie(SIGN_IN_COOKIE, path=ORDERS_PATH)
    return response


@router.post(f"{ORDERS_PATH}/sign-out")
async def sign_out(
    session: SessionDep,
    runtime: RuntimeDep,
    csrf: Annotated[str, Form(max_length=100)] = "",
    session_token: SessionCookie = None,
) -> Response:
    if session_token:
        tenant_id = await tenants.tenant_of_session(session, session_token)
        if tenant_id is not None:
            if not _same(csrf, tenants.csrf_token(session_token)):
                raise CsrfTokenInvalid("Sign out from the Orders page itself.")
            await tenants.sign_out(session, tenant_id, session_token)
    response = RedirectResponse(
        f"{ORDERS_PATH}?signedOut=1", status_code=303, headers=SECURITY_HEADERS
    )
    _forget_session(response, runtime.settings)
    return response


@router.get("/static/{name}")
async def static_asset(
    name: str, v: Annotated[str | None, Query(max_length=64)] = None
) -> Response:
    asset = ASSETS.get(name)
    if asset is None:
        raise AssetNotFound(f"No static file {name}.")
    return Response(
        asset.content,
        media_type=asset.media_type,
        headers={
            "Cache-Control": IMMUTABLE if v == asset.version else "no-cache",
            "X-Content-Type-Options": "nosniff",
        },
    )


def _orders_view(
    request: Request,
    language: Language,
    tenant_id: TenantId,
    session_token: str,
) -> HTMLResponse:
    csrf = tenants.csrf_token(session_token)
    page_config = {
        "language": language,
        "tenant": tenant_id,
        "csrfToken": csrf,
        "csrfHeader": CSRF_HEADER,
        "messages": MESSAGES[language],
        "marketplaces": {
            marketplace.id: {"country": marketplace.country_code, "name": marketplace.name}
            for marketplace in MARKETPLACES.values()
        },
    }
    return render(
        "orders.html",
        language=language,
        tenant_id=tenant_id,
        csrf=csrf,
        filters=PageFilters.from_query(request.query_params),
        status_filters=STATUS_FILTERS,
        sorts=SORTS,
        regions=[region.value for region in Region],
        page_config=page_config,
        just_connected=request.query_params.get("amazon") == "connected",
    )


def _sign_in_view(
    request: Request,
    settings: Settings,
    language: Language,
    sign_in_token: str | None,
    notice: str | None,
    status_code: int = 200,
    next_path: str | None = None,
) -> HTMLResponse:
    token = sign_in_token or secrets.token_urlsafe(32)
    response = render(
        "sign_in.html",
        status_code=status_code,
        language=language,
        sign_in_token=token,
        next_path=_local_path(next_path or _current_path(request)),
        notice=notice,
        failed=status_code != 200,
    )
    response.set_cookie(
        SIGN_IN_COOKIE,
        token,
        path=ORDERS_PATH,
        httponly=True,
        secure=_secure(settings),
        samesite="strict",
    )
    return response


def _continue_here(request: Request, language: Language) -> HTMLResponse:
    """A browser sent here by another site (Amazon's consent, a link in an e-mail) leaves out
    the SameSite=Strict session cookie; a page that reloads itself is this site's own
    navigation, which carries it."""
    return render("continue.html", language=language, target=_current_path(request))


def _sign_in_notice(request: Request) -> str | None:
    return "signIn.signedOut" if request.query_params.get("signedOut") else None


def _current_path(request: Request) -> str:
    """This page's path and query, without the one-time flags (language switch, signed out)."""
    kept = [
        (name, value)
        for name, value in request.query_params.multi_items()
        if name not in ONE_TIME_PARAMETERS
    ]
    return request.url.path + (f"?{urlencode(kept)}" if kept else "")


def _local_path(path: str) -> str:
    """A path of this site to go to next; anything else is the Orders page."""
    try:
        return safe_return_path(path)
    except InvalidInput:
        return ORDERS_PATH


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _session_lifetime(settings: Settings) -> dt.timedelta:
    return dt.timedelta(hours=settings.session_hours)


def _secure(settings: Settings) -> bool:
    return settings.public_url.startswith("https://")


def _forget_session(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, secure=_secure(settings), samesite="strict"
    )


def _remember_language(response: Response, language: Language) -> None:
    response.set_cookie(LANGUAGE_COOKIE, language, max_age=ONE_YEAR, path="/", samesite="lax")

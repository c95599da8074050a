from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Cookie, Query, Response
from fastapi.responses import RedirectResponse

from keybuzz.deps import RuntimeDep, SecretStoreDep, SessionDep, TenantDep
from keybuzz.errors import InvalidInput
from keybuzz.http_limits import AuthenticatedBody
from keybuzz.marketplaces import oauth, service
from keybuzz.marketplaces.oauth import BINDING_COOKIE, CallbackParams, OAuthFailure
from keybuzz.marketplaces.schemas import ConnectionList, ConnectionRead, OAuthStart, OAuthStarted
from keybuzz.marketplaces.service import ConnectionFailure, ConnectionNotFound
from keybuzz.problems import problem_responses
from keybuzz.secrets.store import SecretStoreUnavailable
from keybuzz.ui import pages
from keybuzz.ui.i18n import LANGUAGE_COOKIE, language_of

router = APIRouter(
    prefix="/api/v1/marketplaces", tags=["marketplaces"], route_class=AuthenticatedBody
)
_COOKIE_PATH = "/api/v1/marketplaces/amazon/oauth"


@router.get(
    "",
    response_model=ConnectionList,
    summary="The tenant's marketplace connections, with what to do when one needs action",
    responses=problem_responses(SecretStoreUnavailable),
)
async def list_connections(
    session: SessionDep, store: SecretStoreDep, tenant: TenantDep
) -> ConnectionList:
    return await service.list_connections(session, store, tenant)


@router.post(
    "/amazon/oauth/start",
    response_model=OAuthStarted,
    summary="Start connecting an Amazon seller account (website authorization)",
    description="Call it from the seller's browser (with credentials): the answer sets a "
    "cookie that binds the consent to that browser. Then open `authUrl` in that browser.",
    responses=problem_responses(InvalidInput),
)
async def start_oauth(
    session: SessionDep,
    runtime: RuntimeDep,
    tenant: TenantDep,
    request: OAuthStart,
    response: Response,
) -> OAuthStarted:
    started = await oauth.start(
        session, runtime.amazon.config, oauth.redirect_uri(runtime.settings), tenant, request
    )
    response.set_cookie(
        BINDING_COOKIE,
        started.browser_binding,
        max_age=int(oauth.STATE_LIFETIME.total_seconds()),
        path=_COOKIE_PATH,
        httponly=True,
        secure=runtime.settings.public_url.startswith("https://"),
        samesite="lax",
    )
    return started.response


@router.get(
    "/amazon/oauth/callback",
    summary="Where Amazon sends the seller's browser back (public)",
    response_class=RedirectResponse,
    status_code=303,
    # A page of the seller's browser, not an API: it answers a redirect or an HTML page saying
    # what went wrong (docs/connections.md), like the Orders page's own routes.
    include_in_schema=False,
)
async def oauth_callback(
    session: SessionDep,
    runtime: RuntimeDep,
    store: SecretStoreDep,
    state: Annotated[str | None, Query(max_length=200)] = None,
    selling_partner_id: Annotated[str | None, Query(max_length=64)] = None,
    spapi_oauth_code: Annotated[str | None, Query(max_length=2048)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
    error_description: Annotated[str | None, Query(max_length=2000)] = None,
    binding: Annotated[str | None, Cookie(alias=BINDING_COOKIE)] = None,
    language: Annotated[str | None, Cookie(alias=LANGUAGE_COOKIE)] = None,
) -> Response:
    params = CallbackParams(
        state, selling_partner_id, spapi_oauth_code, error, error_description, binding
    )
    response: Response
    try:
        path = await oauth.complete(
            session, runtime.amazon, store, params, oauth.redirect_uri(runtime.settings)
        )
        response = RedirectResponse(path, status_code=303, headers=pages.SECURITY_HEADERS)
    except (OAuthFailure, ConnectionFailure) as failure:
        response = pages.oauth_failed(failure, language_of(language))
    response.delete_cookie(BINDING_COOKIE, path=_COOKIE_PATH)
    return response


@router.post(
    "/amazon/check",
    response_model=ConnectionRead,
    summary="Verify the Amazon connection now (secret, token, marketplaces)",
    responses=problem_responses(ConnectionNotFound, SecretStoreUnavailable),
)
async def check_connection(
    session: SessionDep, runtime: RuntimeDep, store: SecretStoreDep, tenant: TenantDep
) -> ConnectionRead:
    return await service.check_connection(session, runtime.amazon, store, tenant)


@router.delete(
    "/amazon",
    response_model=ConnectionRead,
    summary="Disconnect Amazon: forget the authorization, keep the orders",
    responses=problem_responses(ConnectionNotFound, SecretStoreUnavailable),
)
async def disconnect(
    session: SessionDep, runtime: RuntimeDep, store: SecretStoreDep, tenant: TenantDep
) -> ConnectionRead:
    return await service.disconnect(session, store, runtime.amazon.registry, tenant)

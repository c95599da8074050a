"""Seller Central website authorization: ``GET /apps/authorize/consent`` (spapi.md §6).

The simulated seller signed in to Seller Central is ``Simulator.consenting_seller`` unless the
URL names one with ``sim_seller_id``; ``sim_refuse=1`` (or the ``consent_refuses`` setting)
makes that seller decline. Amazon's own log-in URI step is skipped: consent redirects straight
to the redirect URI.
"""

from __future__ import annotations

from html import escape
from urllib.parse import urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from keybuzz.simulator.gateway import simulator_of

router = APIRouter()
SELLER_PARAM = "sim_seller_id"
REFUSE_PARAM = "sim_refuse"
REFUSAL = "The seller did not authorize the application."


def error_page(message: str) -> HTMLResponse:
    html = (
        "<!doctype html><html><head><title>Amazon Seller Central</title></head><body>"
        f"<h1>We're sorry</h1><p>{escape(message)}</p></body></html>"
    )
    return HTMLResponse(html, status_code=400)


def with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = "&".join(filter(None, [parts.query, urlencode(params)]))
    return urlunsplit(parts._replace(query=query))


@router.get("/apps/authorize/consent", include_in_schema=False)
async def consent(request: Request) -> Response:
    simulator = simulator_of(request)
    query = request.query_params
    settings = simulator.settings
    if query.get("application_id") != settings.application_id:
        return error_page("The application you are trying to authorize could not be found.")
    if settings.draft_app and query.get("version") != "beta":
        return error_page("This application is in draft status: add version=beta to authorize it.")
    with simulator.lock:
        registered = list(simulator.redirect_uris)
        seller_id = query.get(SELLER_PARAM) or simulator.consenting_seller
        refuses = simulator.consent_refuses or query.get(REFUSE_PARAM, "") in ("1", "true")
    redirect_uri = query.get("redirect_uri") or (registered[0] if registered else "")
    if redirect_uri not in registered:
        return error_page("The redirect URI is not registered for this application.")
    if seller_id not in simulator.sellers:
        return error_page(f"Unknown selling partner {seller_id}.")
    state = {"state": query["state"]} if "state" in query else {}
    if refuses:
        denial = {"error": "access_denied", "error_description": REFUSAL, **state}
        return RedirectResponse(with_query(redirect_uri, denial), status_code=302)
    with simulator.lock:
        code = simulator.credentials.issue_code(seller_id, redirect_uri, simulator.clock.time())
    grant = {**state, "selling_partner_id": seller_id, "spapi_oauth_code": code}
    return RedirectResponse(with_query(redirect_uri, grant), status_code=302)

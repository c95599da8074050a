"""Seller Central website authorization: consent, refusal, and the errors that never redirect."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import httpx

from keybuzz.simulator import SimulatorServer
from tests.simulator.conftest import new_seller

CONSENT = "/apps/authorize/consent"


def redirect_params(response: httpx.Response) -> tuple[str, dict[str, str]]:
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    target = f"{location.scheme}://{location.netloc}{location.path}"
    return target, {key: values[0] for key, values in parse_qs(location.query).items()}


def consent(http: httpx.Client, server: SimulatorServer, **params: str) -> httpx.Response:
    query = {"application_id": server.settings.application_id, "state": "csrf-42", **params}
    return http.get(CONSENT, params=query)


def test_consenting_seller_is_redirected_with_code_and_state(
    http: httpx.Client, server: SimulatorServer
) -> None:
    redirect = server.settings.redirect_uris[1]

    target, params = redirect_params(consent(http, server, redirect_uri=redirect))

    assert target == redirect
    assert params["state"] == "csrf-42"
    assert params["selling_partner_id"] == server.settings.seller_id
    assert len(params["spapi_oauth_code"]) >= 20


def test_redirect_uri_defaults_to_the_first_registered(
    http: httpx.Client, server: SimulatorServer
) -> None:
    target, _ = redirect_params(consent(http, server))

    assert target == server.settings.redirect_uris[0]


def test_query_flag_chooses_the_consenting_seller(
    http: httpx.Client, server: SimulatorServer
) -> None:
    seller_id = new_seller(server, orders=1)

    _, params = redirect_params(consent(http, server, sim_seller_id=seller_id))

    assert params["selling_partner_id"] == seller_id


def test_refusing_seller_redirects_with_access_denied(
    http: httpx.Client, server: SimulatorServer
) -> None:
    _, params = redirect_params(consent(http, server, sim_refuse="1"))

    assert params["error"] == "access_denied"
    assert params["state"] == "csrf-42"
    assert params["error_description"]
    assert "spapi_oauth_code" not in params


def test_refusal_by_setting_and_by_inspection_call(
    make_server: Callable[..., SimulatorServer],
) -> None:
    refusing = make_server(consent_refuses=True)
    consenting = make_server()
    with (
        httpx.Client(base_url=refusing.base_url) as first,
        httpx.Client(base_url=consenting.base_url) as second,
    ):
        _, refused = redirect_params(consent(first, refusing))
        second.put("/_sim/consent", json={"refuses": True})
        _, refused_later = redirect_params(consent(second, consenting))

    assert refused["error"] == refused_later["error"] == "access_denied"


def test_unknown_application_gets_an_error_page(
    http: httpx.Client, server: SimulatorServer
) -> None:
    response = consent(http, server, application_id="amzn1.sp.solution.unknown")

    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")


def test_unregistered_redirect_uri_gets_an_error_page(
    http: httpx.Client, server: SimulatorServer
) -> None:
    response = consent(http, server, redirect_uri="https://attacker.example/steal")

    assert response.status_code == 400
    assert "location" not in response.headers


def test_draft_app_requires_version_beta(make_server: Callable[..., SimulatorServer]) -> None:
    server = make_server(draft_app=True)
    with httpx.Client(base_url=server.base_url) as http:
        without_beta = consent(http, server)
        with_beta = consent(http, server, version="beta")

    assert without_beta.status_code == 400
    assert with_beta.status_code == 302


def test_registered_redirect_uris_can_be_replaced(
    make_server: Callable[..., SimulatorServer],
) -> None:
    server = make_server()
    callback = "http://127.0.0.1:9999/connections/amazon/callback"
    with httpx.Client(base_url=server.base_url) as http:
        http.put("/_sim/redirect-uris", json={"redirect_uris": [callback]})
        target, _ = redirect_params(consent(http, server))

    assert target == callback

"""Login with Amazon: grants, Amazon's error bodies, and what SP-API says about bad tokens."""

from __future__ import annotations

import base64
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import httpx

from keybuzz.simulator import SimulatorServer
from tests.simulator.conftest import SEARCH, SpApi
from tests.simulator.schemas import assert_matches_model

V2026 = "orders_2026-01-01.json"


def consent_code(http: httpx.Client, server: SimulatorServer) -> str:
    settings = server.settings
    response = http.get(
        "/apps/authorize/consent",
        params={"application_id": settings.application_id, "state": "s1"},
    )
    return parse_qs(urlsplit(response.headers["location"]).query)["spapi_oauth_code"][0]


def token_request(server: SimulatorServer, **fields: str) -> dict[str, str]:
    settings = server.settings
    return {
        "client_id": settings.client_id,
        "client_secret": settings.client_secret.get_secret_value(),
        **fields,
    }


def exchange(
    http: httpx.Client, server: SimulatorServer, code: str, redirect: str
) -> httpx.Response:
    fields = token_request(
        server, grant_type="authorization_code", code=code, redirect_uri=redirect
    )
    return http.post("/auth/o2/token", data=fields)


def test_authorization_code_gives_tokens_in_amazon_form(
    http: httpx.Client, server: SimulatorServer
) -> None:
    response = exchange(http, server, consent_code(http, server), server.settings.redirect_uris[0])

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["access_token"].startswith("Atza|")
    assert body["refresh_token"].startswith("Atzr|")
    assert (body["token_type"], body["expires_in"]) == ("bearer", 3600)


def test_authorization_code_is_single_use(http: httpx.Client, server: SimulatorServer) -> None:
    code = consent_code(http, server)
    redirect = server.settings.redirect_uris[0]
    assert exchange(http, server, code, redirect).status_code == 200

    second = exchange(http, server, code, redirect)

    assert second.status_code == 400
    assert second.json() == {
        "error_description": "The request has an invalid grant parameter : code",
        "error": "invalid_grant",
    }


def test_authorization_code_is_bound_to_its_redirect_uri(
    http: httpx.Client, server: SimulatorServer
) -> None:
    response = exchange(http, server, consent_code(http, server), "https://elsewhere.example/cb")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_authorization_code_expires_after_five_minutes(
    make_server: Callable[..., SimulatorServer],
) -> None:
    server = make_server()
    with httpx.Client(base_url=server.base_url) as http:
        code = consent_code(http, server)
        server.simulator.advance_clock(301)

        response = exchange(http, server, code, server.settings.redirect_uris[0])

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_refresh_grant_echoes_the_refresh_token(http: httpx.Client, api: SpApi) -> None:
    response = api.refresh()

    assert response.status_code == 200
    assert response.json()["refresh_token"] == api.refresh_token
    assert response.json()["access_token"] != ""


def test_revoked_refresh_token_gets_invalid_grant(http: httpx.Client, api: SpApi) -> None:
    http.post(f"/_sim/sellers/{api.seller_id}/revoke", json={"refresh_token": api.refresh_token})

    response = api.refresh()

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert "refresh_token" in response.json()["error_description"]


def test_a_refresh_token_of_an_earlier_run_is_honoured_once_restored(
    http: httpx.Client, server: SimulatorServer
) -> None:
    """What the demo does at a restart: Amazon kept the consent its simulator forgot."""
    earlier = "Atzr|granted-to-an-earlier-simulator-run"
    fields = token_request(server, grant_type="refresh_token", refresh_token=earlier)
    forgotten = http.post("/auth/o2/token", data=fields)

    server.simulator.restore_authorization(server.settings.seller_id, earlier)
    honoured = http.post("/auth/o2/token", data=fields)

    assert forgotten.json()["error"] == "invalid_grant"
    assert honoured.status_code == 200
    assert honoured.json()["access_token"].startswith("Atza|")


def test_wrong_client_secret_is_invalid_client(http: httpx.Client, api: SpApi) -> None:
    fields = {
        "grant_type": "refresh_token",
        "refresh_token": api.refresh_token,
        "client_id": api.server.settings.client_id,
        "client_secret": "not-the-secret",
    }

    response = http.post("/auth/o2/token", data=fields)

    assert response.status_code == 401
    assert response.json() == {
        "error_description": "Client authentication failed",
        "error": "invalid_client",
    }


def test_unknown_client_id_is_invalid_client(http: httpx.Client, api: SpApi) -> None:
    fields = token_request(api.server, grant_type="refresh_token", refresh_token=api.refresh_token)
    fields["client_id"] = "amzn1.application-oa2-client.someoneelse"

    assert http.post("/auth/o2/token", data=fields).status_code == 401


def test_json_body_and_basic_auth_are_accepted(http: httpx.Client, api: SpApi) -> None:
    settings = api.server.settings
    secret = settings.client_secret.get_secret_value()
    basic = base64.b64encode(f"{settings.client_id}:{secret}".encode()).decode()
    json_body = {"grant_type": "refresh_token", "refresh_token": api.refresh_token}

    response = http.post(
        "/auth/o2/token",
        json={**json_body, "client_id": settings.client_id, "client_secret": secret},
    )
    with_basic = http.post(
        "/auth/o2/token", data=json_body, headers={"Authorization": f"Basic {basic}"}
    )

    assert (response.status_code, with_basic.status_code) == (200, 200)


def test_unsupported_grant_type(http: httpx.Client, server: SimulatorServer) -> None:
    response = http.post("/auth/o2/token", data=token_request(server, grant_type="password"))

    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_missing_access_token_is_403_unauthorized(http: httpx.Client, api: SpApi) -> None:
    response = http.get(SEARCH, params={"createdAfter": "2020-01-01T00:00:00Z"})

    assert response.status_code == 403
    assert_matches_model(V2026, "searchOrders", 403, response.json())
    assert response.json()["errors"][0] == {
        "code": "Unauthorized",
        "message": "Access to requested resource is denied.",
        "details": "Access token is missing in the request header.",
    }
    assert "x-amzn-RequestId" in response.headers


def test_unknown_access_token_is_403(api: SpApi) -> None:
    response = api.get(SEARCH, token="Atza|forged", createdAfter="2020-01-01T00:00:00Z")

    assert response.status_code == 403
    details = response.json()["errors"][0]["details"]
    assert details == "The access token you provided is revoked, malformed or invalid."


def test_access_token_expires_after_an_hour(
    make_server: Callable[..., SimulatorServer], connect: Callable[..., SpApi]
) -> None:
    server = make_server()
    api = connect(server, server.settings.seller_id)
    assert api.get(SEARCH, createdAfter="2020-01-01T00:00:00Z").status_code == 200
    server.simulator.advance_clock(3600)

    response = api.get(SEARCH, createdAfter="2020-01-01T00:00:00Z")

    assert response.status_code == 403
    assert_matches_model(V2026, "searchOrders", 403, response.json())
    assert response.json()["errors"][0]["details"] == "The access token you provided has expired."
    assert api.refresh().status_code == 200
    assert api.get(SEARCH, createdAfter="2020-01-01T00:00:00Z").status_code == 200


def test_revoking_a_seller_kills_its_access_tokens(
    make_server: Callable[..., SimulatorServer], connect: Callable[..., SpApi]
) -> None:
    server = make_server()
    api = connect(server, server.settings.seller_id)

    assert server.simulator.revoke(api.seller_id) == 1

    response = api.get(SEARCH, createdAfter="2020-01-01T00:00:00Z")
    assert response.status_code == 403
    assert api.refresh().json()["error"] == "invalid_grant"

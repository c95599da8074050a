"""Login with Amazon: code exchange, the cached access token, and its failures."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import SecretStr

from keybuzz.amazon.errors import (
    AmazonAppCredentialsInvalid,
    AmazonAuthorizationCodeInvalid,
    AmazonAuthorizationRevoked,
    AmazonUnavailable,
)
from keybuzz.amazon.lwa import LwaClient
from keybuzz.amazon.regions import Region, consent_url
from keybuzz.config import Settings
from keybuzz.runtime import spapi_config
from keybuzz.simulator import SimulatorServer
from keybuzz.simulator.settings import DEFAULT_REDIRECT_URIS
from tests.amazon.conftest import (
    QUICK_RETRY,
    Connect,
    FakeClock,
    amazon_config,
    counts,
    new_seller,
)

REDIRECT = DEFAULT_REDIRECT_URIS[0]
PARTICIPATIONS = "sellers.getMarketplaceParticipations"
LWA = "lwa.token"
Handler = Callable[[httpx.Request], httpx.Response]


async def authorization_code(server: SimulatorServer, http: httpx.AsyncClient) -> str:
    url = consent_url(amazon_config(server), Region.EU, state="st", redirect_uri=REDIRECT)
    response = await http.get(url)
    return parse_qs(urlsplit(response.headers["location"]).query)["spapi_oauth_code"][0]


async def test_code_exchange_gives_a_refresh_token_that_works(
    sim: SimulatorServer, http: httpx.AsyncClient
) -> None:
    lwa = LwaClient(http, amazon_config(sim), retry=QUICK_RETRY)

    grant = await lwa.exchange_authorization_code(
        code=await authorization_code(sim, http), redirect_uri=REDIRECT
    )

    assert grant.refresh_token.get_secret_value().startswith("Atzr|")
    assert grant.access_token.get_secret_value().startswith("Atza|")
    assert grant.expires_in == 3600
    refreshed = await lwa.refresh_access_token(refresh_token=grant.refresh_token)
    assert refreshed.access_token != grant.access_token


async def test_a_used_code_is_a_typed_error(sim: SimulatorServer, http: httpx.AsyncClient) -> None:
    lwa = LwaClient(http, amazon_config(sim), retry=QUICK_RETRY)
    code = await authorization_code(sim, http)
    await lwa.exchange_authorization_code(code=code, redirect_uri=REDIRECT)

    with pytest.raises(AmazonAuthorizationCodeInvalid) as caught:
        await lwa.exchange_authorization_code(code=code, redirect_uri=REDIRECT)

    assert caught.value.code == "amazon_authorization_code_invalid"
    assert isinstance(caught.value, AmazonAuthorizationRevoked)
    assert code not in str(caught.value)


async def test_revoked_refresh_token_is_a_typed_error_not_retried(
    make_sim: Callable[..., SimulatorServer], connect: Connect
) -> None:
    server = make_sim()
    seller = new_seller(server)
    client = connect(server, seller)
    server.simulator.revoke(seller)

    with pytest.raises(AmazonAuthorizationRevoked) as caught:
        await client.sellers.get_marketplace_participations()

    assert caught.value.code == "amazon_authorization_revoked"
    assert caught.value.title == "Amazon credentials revoked or expired — reconnect"
    assert "Atzr|" not in str(caught.value)
    assert counts(server, LWA) == {"400": 1}
    assert counts(server, PARTICIPATIONS) == {}


async def test_wrong_client_secret_is_a_typed_error_not_retried(
    make_sim: Callable[..., SimulatorServer], connect: Connect
) -> None:
    server = make_sim()
    wrong = amazon_config(server, lwa_client_secret=SecretStr("amzn1.oa2-cs.v1.not-rotated"))
    client = connect(server, config=wrong)

    with pytest.raises(AmazonAppCredentialsInvalid) as caught:
        await client.check_credentials()

    assert caught.value.title == "Amazon application credentials wrong or not rotated"
    assert "not-rotated" not in str(caught.value)
    assert counts(server, LWA) == {"401": 1}


async def test_one_access_token_serves_concurrent_calls(
    make_sim: Callable[..., SimulatorServer], connect: Connect
) -> None:
    server = make_sim()
    client = connect(server)

    results = await asyncio.gather(
        *(client.sellers.get_marketplace_participations() for _ in range(12))
    )

    assert all(result[0].marketplace.country_code == "FR" for result in results)
    assert counts(server, LWA) == {"200": 1}
    assert counts(server, PARTICIPATIONS) == {"200": 12}


async def test_token_refreshed_shortly_before_expiry(
    make_sim: Callable[..., SimulatorServer], connect: Connect
) -> None:
    server = make_sim()
    clock = FakeClock()
    client = connect(server, clock=clock)
    await client.sellers.get_marketplace_participations()

    clock.advance(3600 - 600)
    await client.sellers.get_marketplace_participations()
    assert counts(server, LWA) == {"200": 1}

    clock.advance(500)
    await client.sellers.get_marketplace_participations()
    assert counts(server, LWA) == {"200": 2}
    assert counts(server, PARTICIPATIONS) == {"200": 3}


async def test_token_expired_at_amazon_is_renewed_and_the_call_completes(
    make_sim: Callable[..., SimulatorServer], connect: Connect
) -> None:
    server = make_sim()
    seller = new_seller(server)
    client = connect(server, seller)
    await client.sellers.get_marketplace_participations()
    server.simulator.expire_access_tokens(seller)

    participations = await client.sellers.get_marketplace_participations()

    assert participations[0].store_name == "KeyBuzz Demo Store"
    assert counts(server, LWA) == {"200": 2}
    assert counts(server, PARTICIPATIONS) == {"200": 2, "403": 1}


async def test_check_credentials_asks_lwa_even_with_a_cached_token(
    make_sim: Callable[..., SimulatorServer], connect: Connect
) -> None:
    server = make_sim()
    seller = new_seller(server)
    client = connect(server, seller)
    await client.check_credentials()
    await client.check_credentials()
    assert counts(server, LWA) == {"200": 2}

    server.simulator.revoke(seller)
    with pytest.raises(AmazonAuthorizationRevoked):
        await client.check_credentials()


@pytest.fixture
async def lwa_over() -> AsyncIterator[Callable[[Handler], LwaClient]]:
    """``lwa_over(handler)``: an LWA client whose HTTP goes to ``handler``."""
    opened: list[httpx.AsyncClient] = []

    def open_lwa(handler: Handler) -> LwaClient:
        http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        opened.append(http)
        return LwaClient(http, spapi_config(Settings(_env_file=None)), retry=QUICK_RETRY)  # type: ignore[call-arg]

    yield open_lwa
    for http in opened:
        await http.aclose()


async def test_lwa_outage_is_retried_then_typed(lwa_over: Callable[[Handler], LwaClient]) -> None:
    answers = iter([503, 500, 200])
    seen: list[dict[str, list[str]]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(parse_qs(request.content.decode()))
        status = next(answers)
        if status != 200:
            return httpx.Response(status, json={"error": "server_error"})
        body = {"access_token": "Atza|new", "token_type": "bearer", "expires_in": 3600}
        return httpx.Response(200, content=json.dumps(body))

    grant = await lwa_over(handler).refresh_access_token(refresh_token=SecretStr("Atzr|abc"))

    assert grant.access_token.get_secret_value() == "Atza|new"
    assert grant.refresh_token.get_secret_value() == "Atzr|abc"
    assert len(seen) == 3
    assert seen[0]["grant_type"] == ["refresh_token"]

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(AmazonUnavailable, match="after 8 tries"):
        await lwa_over(down).refresh_access_token(refresh_token=SecretStr("Atzr|abc"))

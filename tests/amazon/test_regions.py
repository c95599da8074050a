"""Regions, marketplaces, endpoints and consent URLs, from the settings."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from keybuzz.amazon.config import SpApiConfig
from keybuzz.amazon.regions import (
    MARKETPLACES,
    Region,
    consent_url,
    endpoints,
    marketplace,
    marketplace_by_sales_channel,
    region_of,
)
from keybuzz.config import Settings
from keybuzz.runtime import spapi_config
from keybuzz.simulator import SimulatorServer
from keybuzz.simulator.settings import (
    DEFAULT_APPLICATION_ID,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REDIRECT_URIS,
)
from tests.amazon.conftest import FR, amazon_config


def plain_config(**values: Any) -> SpApiConfig:
    return spapi_config(Settings(_env_file=None, **values))  # type: ignore[call-arg]


def test_production_hosts_by_default() -> None:
    config = plain_config()

    assert endpoints(config, Region.EU).spapi == "https://sellingpartnerapi-eu.amazon.com"
    assert endpoints(config, Region.NA).spapi == "https://sellingpartnerapi-na.amazon.com"
    assert endpoints(config, Region.FE).spapi == "https://sellingpartnerapi-fe.amazon.com"
    assert {endpoints(config, r).lwa_token_url for r in Region} == {
        "https://api.amazon.com/auth/o2/token"
    }
    assert endpoints(config, Region.EU).seller_central == "https://sellercentral-europe.amazon.com"


def test_sandbox_hosts_on_request() -> None:
    config = plain_config(spapi_sandbox=True)

    assert endpoints(config, Region.FE).spapi == "https://sandbox.sellingpartnerapi-fe.amazon.com"


def test_overrides_replace_every_region() -> None:
    config = plain_config(
        spapi_endpoint="http://127.0.0.1:8100/",
        lwa_token_url="http://127.0.0.1:8100/auth/o2/token",
        seller_central_url="http://127.0.0.1:8100",
        spapi_sandbox=True,
    )

    for region in Region:
        found = endpoints(config, region)
        assert found.spapi == "http://127.0.0.1:8100"
        assert found.lwa_token_url == "http://127.0.0.1:8100/auth/o2/token"
        assert found.seller_central == "http://127.0.0.1:8100"


def test_empty_override_means_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYBUZZ_SPAPI_ENDPOINT", "")

    assert endpoints(plain_config(), Region.NA).spapi == "https://sellingpartnerapi-na.amazon.com"


def test_app_identity_defaults_are_the_simulators() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]

    assert settings.lwa_client_id == DEFAULT_CLIENT_ID
    assert settings.lwa_client_secret.get_secret_value() == DEFAULT_CLIENT_SECRET
    assert settings.spapi_application_id == DEFAULT_APPLICATION_ID
    assert settings.masked()["lwa_client_secret"] == "********"


def test_marketplace_table() -> None:
    france, uk = marketplace(FR), marketplace("A1F83G8C2ARO7P")

    assert len(MARKETPLACES) == 23
    assert (france.code, france.currency, france.region, france.name) == (
        "FR",
        "EUR",
        Region.EU,
        "Amazon.fr",
    )
    assert (uk.code, uk.country_code, uk.currency) == ("UK", "GB", "GBP")
    assert region_of("ATVPDKIKX0DER") is Region.NA
    assert region_of("A1VC38T7YXB528") is Region.FE
    assert marketplace("A1805IZSGTT6HS").seller_central == "https://sellercentral.amazon.nl"
    assert marketplace("A1PA6795UKMFR9").seller_central == "https://sellercentral-europe.amazon.com"
    assert marketplace("A1AM78C64UM0Y8").seller_central == "https://sellercentral.amazon.com.mx"
    assert marketplace("A1VC38T7YXB528").domain == "www.amazon.co.jp"
    assert marketplace_by_sales_channel("amazon.de") == marketplace("A1PA6795UKMFR9")
    assert marketplace_by_sales_channel("Non-Amazon") is None
    with pytest.raises(KeyError):
        marketplace("NOT-A-MARKETPLACE")


def test_consent_url_for_a_published_and_a_draft_app() -> None:
    published = consent_url(
        plain_config(), Region.EU, state="s-1", redirect_uri="https://kb.example/cb"
    )
    draft = consent_url(
        plain_config(spapi_app_draft=True), Region.NA, state="s 2", redirect_uri="https://x/cb"
    )

    parts = urlsplit(published)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == (
        "https://sellercentral-europe.amazon.com/apps/authorize/consent"
    )
    assert parse_qs(parts.query) == {
        "application_id": [DEFAULT_APPLICATION_ID],
        "state": ["s-1"],
        "redirect_uri": ["https://kb.example/cb"],
    }
    assert draft.startswith("https://sellercentral.amazon.com/apps/authorize/consent?")
    assert parse_qs(urlsplit(draft).query)["version"] == ["beta"]
    assert parse_qs(urlsplit(draft).query)["state"] == ["s 2"]


def test_consent_url_of_a_marketplace_with_its_own_seller_central() -> None:
    url = consent_url(
        plain_config(),
        Region.EU,
        state="s",
        redirect_uri="https://x/cb",
        marketplace_id="A1805IZSGTT6HS",
    )

    assert url.startswith("https://sellercentral.amazon.nl/apps/authorize/consent?")


async def test_consent_url_is_accepted_by_seller_central(
    sim: SimulatorServer, http: httpx.AsyncClient
) -> None:
    url = consent_url(
        amazon_config(sim), Region.EU, state="csrf-42", redirect_uri=DEFAULT_REDIRECT_URIS[0]
    )

    response = await http.get(url)

    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["state"] == ["csrf-42"]
    assert query["spapi_oauth_code"]

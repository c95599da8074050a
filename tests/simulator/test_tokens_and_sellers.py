"""Tokens API createRestrictedDataToken and Sellers API getMarketplaceParticipations."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from keybuzz.simulator import SimulatorServer
from tests.simulator.conftest import DE, FR, SpApi, new_seller
from tests.simulator.schemas import assert_matches_model

TOKENS = "tokens_2021-03-01.json"
SELLERS = "sellers.json"
RDT = "/tokens/2021-03-01/restrictedDataToken"
PARTICIPATIONS = "/sellers/v1/marketplaceParticipations"


def test_restricted_data_token_matches_the_model(api: SpApi) -> None:
    body = {
        "restrictedResources": [
            {"method": "GET", "path": "/orders/v0/orders", "dataElements": ["buyerInfo"]},
            {"method": "GET", "path": "/orders/v0/orders/{orderId}/address"},
        ]
    }

    response = api.post(RDT, body)

    assert response.status_code == 200
    assert_matches_model(TOKENS, "createRestrictedDataToken", 200, response.json())
    assert response.json()["restrictedDataToken"].startswith("Atz.sprdt|")
    assert response.json()["expiresIn"] == 3600


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"restrictedResources": []},
        {"restrictedResources": [{"method": "", "path": "/orders/v0/orders"}]},
        {"restrictedResources": [{"method": "GET", "path": "/orders/v1/orders/1/address"}]},
        {"restrictedResources": [{"method": "GET", "path": "/orders/v0/orders"}]},
        {
            "restrictedResources": [
                {"method": "GET", "path": "/orders/v0/orders", "dataElements": ["creditCard"]}
            ]
        },
        {
            "restrictedResources": [
                {"method": "GET", "path": "/orders/v0/orders/{orderId}/address"}
            ]
            * 51
        },
    ],
    ids=[
        "no-resources",
        "empty",
        "no-method",
        "not-restricted",
        "no-elements",
        "bad-element",
        "too-many",
    ],
)
def test_invalid_rdt_requests(api: SpApi, body: dict[str, Any]) -> None:
    response = api.post(RDT, body)

    assert response.status_code == 400
    assert_matches_model(TOKENS, "createRestrictedDataToken", 400, response.json())


def test_rdt_needs_the_role_for_its_data(
    make_server: Callable[..., SimulatorServer], connect: Callable[..., SpApi]
) -> None:
    server = make_server(pii_roles=["TAX_INVOICING"])
    api = connect(server, server.settings.seller_id)
    address = {"method": "GET", "path": "/orders/v0/orders", "dataElements": ["shippingAddress"]}
    buyer = {"method": "GET", "path": "/orders/v0/orders", "dataElements": ["buyerInfo"]}

    refused = api.post(RDT, {"restrictedResources": [address]})
    granted = api.post(RDT, {"restrictedResources": [buyer]})

    assert refused.status_code == 403
    assert_matches_model(TOKENS, "createRestrictedDataToken", 403, refused.json())
    assert granted.status_code == 200


def test_an_rdt_cannot_mint_another_rdt(api: SpApi) -> None:
    resource = {"method": "GET", "path": "/orders/v0/orders", "dataElements": ["buyerInfo"]}
    token = api.post(RDT, {"restrictedResources": [resource]}).json()["restrictedDataToken"]

    response = api.post(RDT, {"restrictedResources": [resource]}, token=token)

    assert response.status_code == 403


def test_marketplace_participations_match_the_model(server: SimulatorServer, api: SpApi) -> None:
    response = api.get(PARTICIPATIONS)

    assert response.status_code == 200
    assert_matches_model(SELLERS, "getMarketplaceParticipations", 200, response.json())
    (participation,) = response.json()["payload"]
    assert participation["marketplace"] == {
        "id": FR,
        "name": "Amazon.fr",
        "countryCode": "FR",
        "defaultCurrencyCode": "EUR",
        "defaultLanguageCode": "fr_FR",
        "domainName": "www.amazon.fr",
    }
    assert participation["participation"]["isParticipating"] is True


def test_participations_list_every_marketplace_of_the_seller(
    server: SimulatorServer, connect: Callable[..., SpApi]
) -> None:
    seller_id = new_seller(server, marketplaces=(FR, DE, "A1F83G8C2ARO7P"))
    api = connect(server, seller_id)

    payload = api.get(PARTICIPATIONS).json()["payload"]

    currencies = {
        p["marketplace"]["countryCode"]: p["marketplace"]["defaultCurrencyCode"] for p in payload
    }
    assert currencies == {"FR": "EUR", "DE": "EUR", "GB": "GBP"}


def test_participations_without_token_is_403(api: SpApi) -> None:
    response = api.http.get(PARTICIPATIONS)

    assert response.status_code == 403
    assert_matches_model(SELLERS, "getMarketplaceParticipations", 403, response.json())

"""Tokens API 2021-03-01: restricted data tokens (RDT) for Orders v0 PII (spapi.md §7).

One bulk RDT per connection covers getOrders, getOrder and getOrderItems for every order; it
lives an hour and is renewed before that, like the access token.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from pydantic import ConfigDict, SecretStr
from pydantic.alias_generators import to_camel

from keybuzz.amazon.lwa import Clock, IssuedToken, TokenAuth, TokenCache
from keybuzz.amazon.models_common import AmazonModel
from keybuzz.amazon.operations import (
    CREATE_RESTRICTED_DATA_TOKEN,
    V0_ORDER,
    V0_ORDER_ITEMS,
    V0_ORDERS,
)
from keybuzz.amazon.transport import SpApiTransport


class RestrictedResource(AmazonModel):
    model_config = ConfigDict(alias_generator=to_camel)

    method: str
    path: str
    data_elements: tuple[str, ...] = ()


class RestrictedDataToken(AmazonModel):
    model_config = ConfigDict(alias_generator=to_camel)

    restricted_data_token: SecretStr
    expires_in: int


BULK_ORDER_RESOURCES = (
    RestrictedResource(
        method="GET", path=V0_ORDERS, data_elements=("buyerInfo", "shippingAddress")
    ),
    RestrictedResource(method="GET", path=V0_ORDER, data_elements=("buyerInfo", "shippingAddress")),
    RestrictedResource(method="GET", path=V0_ORDER_ITEMS, data_elements=("buyerInfo",)),
)


class TokensApi:
    def __init__(self, transport: SpApiTransport) -> None:
        self._transport = transport

    async def create_restricted_data_token(
        self,
        *,
        restricted_resources: Sequence[RestrictedResource],
        target_application: str | None = None,
    ) -> RestrictedDataToken:
        body: dict[str, object] = {
            "restrictedResources": [
                r.model_dump(by_alias=True, exclude_defaults=True) for r in restricted_resources
            ]
        }
        if target_application is not None:
            body["targetApplication"] = target_application
        return await self._transport.call(
            CREATE_RESTRICTED_DATA_TOKEN, RestrictedDataToken, json_body=body
        )


class RestrictedDataAuth(TokenAuth):
    """Sends the connection's bulk RDT instead of its access token (Orders v0 PII calls)."""

    def __init__(
        self,
        tokens: TokensApi,
        cache: TokenCache,
        clock: Clock = time.monotonic,
        resources: Sequence[RestrictedResource] = BULK_ORDER_RESOURCES,
    ) -> None:
        super().__init__(cache, clock)
        self._tokens = tokens
        self._resources = tuple(resources)

    async def _issue(self) -> IssuedToken:
        issued = await self._tokens.create_restricted_data_token(
            restricted_resources=self._resources
        )
        return IssuedToken(issued.restricted_data_token, issued.expires_in)

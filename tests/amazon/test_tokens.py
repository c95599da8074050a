"""Tokens API: restricted data tokens, bulk or for one order."""

from __future__ import annotations

from keybuzz.amazon.tokens import BULK_ORDER_RESOURCES, RestrictedResource
from keybuzz.simulator import SimulatorServer
from tests.amazon.conftest import Connect, new_seller, truth


async def test_a_token_for_one_order_opens_only_that_order(
    sim: SimulatorServer, connect: Connect
) -> None:
    seller = new_seller(sim, orders=10)
    client = connect(sim, seller)
    order_id = truth(sim, seller)[0]["orderId"]

    specific = await client.tokens.create_restricted_data_token(
        restricted_resources=[
            RestrictedResource(
                method="GET",
                path=f"/orders/v0/orders/{order_id}",
                data_elements=("buyerInfo", "shippingAddress"),
            )
        ]
    )
    bulk = await client.tokens.create_restricted_data_token(
        restricted_resources=BULK_ORDER_RESOURCES
    )

    assert specific.expires_in == bulk.expires_in == 3600
    assert specific.restricted_data_token.get_secret_value().startswith("Atz.sprdt|")
    assert "Atz.sprdt" not in repr(specific)
    assert specific.restricted_data_token != bulk.restricted_data_token

"""Sellers API: the marketplaces a connected seller sells in."""

from __future__ import annotations

from keybuzz.amazon.regions import marketplace
from keybuzz.simulator import SimulatorServer
from tests.amazon.conftest import DE, FR, Connect, new_seller


async def test_marketplace_participations(sim: SimulatorServer, connect: Connect) -> None:
    seller = new_seller(sim, marketplaces=(FR, DE), store_name="Ecom LG")

    participations = await connect(sim, seller).sellers.get_marketplace_participations()

    assert [p.marketplace.id for p in participations] == [FR, DE]
    for participation in participations:
        known = marketplace(participation.marketplace.id)
        assert participation.marketplace.country_code == known.country_code
        assert participation.marketplace.default_currency_code == known.currency
        assert participation.marketplace.domain_name == known.domain
        assert participation.participation.is_participating
        assert participation.store_name == "Ecom LG"

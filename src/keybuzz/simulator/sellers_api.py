"""Sellers API ``getMarketplaceParticipations`` for the calling seller."""

from __future__ import annotations

from typing import Any

from keybuzz.simulator.gateway import Call
from keybuzz.simulator.marketplaces import MARKETPLACES


def marketplace_participations(call: Call) -> dict[str, Any]:
    seller = call.seller
    payload = []
    for marketplace_id in seller.marketplaces:
        marketplace = MARKETPLACES[marketplace_id]
        payload.append(
            {
                "marketplace": {
                    "id": marketplace.id,
                    "name": marketplace.name,
                    "countryCode": marketplace.country,
                    "defaultCurrencyCode": marketplace.currency,
                    "defaultLanguageCode": marketplace.language,
                    "domainName": marketplace.domain,
                },
                "participation": {"isParticipating": True, "hasSuspendedListings": False},
                "storeName": seller.spec.store_name,
            }
        )
    return {"payload": payload}

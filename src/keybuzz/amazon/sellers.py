"""Sellers API: which marketplaces the connected seller sells in (call once after consent)."""

from __future__ import annotations

from keybuzz.amazon.models_reports import (
    GetMarketplaceParticipationsResponse,
    MarketplaceParticipation,
)
from keybuzz.amazon.operations import GET_MARKETPLACE_PARTICIPATIONS
from keybuzz.amazon.transport import SpApiTransport


class SellersApi:
    def __init__(self, transport: SpApiTransport) -> None:
        self._transport = transport

    async def get_marketplace_participations(self) -> list[MarketplaceParticipation]:
        response = await self._transport.call(
            GET_MARKETPLACE_PARTICIPATIONS, GetMarketplaceParticipationsResponse
        )
        return response.payload

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from keybuzz.amazon.regions import MARKETPLACES, Region
from keybuzz.marketplaces.models import ConnectionStatus
from keybuzz.schemas import Schema, UtcDateTime


def _any_case(word: str) -> str:
    return "".join(f"[{letter.upper()}{letter.lower()}]" for letter in word)


def _region_pattern(*regions: Region) -> str:
    return "^(" + "|".join(_any_case(region.value) for region in regions) + ")$"


def _one_region(region: Region) -> dict[str, Any]:
    """A marketplace of ``region``, and the region, if given, its own."""
    ids = sorted(m.id for m in MARKETPLACES.values() if m.region is region)
    return {
        "required": ["marketplaceId"],
        "properties": {
            "marketplaceId": {"enum": ids},
            "region": {"anyOf": [{"type": "null"}, {"pattern": _region_pattern(region)}]},
        },
    }


_REGION_OR_MARKETPLACE: dict[str, Any] = {
    "anyOf": [
        *(_one_region(region) for region in Region),
        {
            "required": ["region"],
            "properties": {
                "region": {"type": "string", "pattern": _region_pattern(*Region)},
                "marketplaceId": {"type": "null"},
            },
        },
    ]
}
"""What ``oauth.start`` takes, stated for OpenAPI: a region (any case), or a marketplace
with, if given, its own region."""


class OAuthStart(Schema):
    """Which Amazon region to authorize: give the region, or one marketplace of it."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_REGION_OR_MARKETPLACE)

    region: str | None = Field(default=None, description="`NA`, `EU` or `FE`.")
    marketplace_id: str | None = Field(
        default=None, max_length=32, description="e.g. `A13V1IB3VIYZZH` (Amazon.fr)."
    )
    return_path: str | None = Field(
        default=None,
        max_length=500,
        description="A path of this site to land on afterwards (default `/orders`).",
    )


class OAuthStarted(Schema):
    auth_url: str = Field(description="Send the seller's browser here (Seller Central consent).")
    expires_at: UtcDateTime = Field(description="The consent must be completed before this.")


class ConnectionAction(Schema):
    kind: str = Field(description="`connect`, `reconnect` or `contact_support`.")
    message: str
    method: str | None = None
    href: str | None = None


class MarketplaceRead(Schema):
    id: str
    country_code: str | None
    name: str | None


class ConnectionRead(Schema):
    marketplace: str
    status: ConnectionStatus
    status_reason: str | None
    region: str | None
    selling_partner_id: str | None
    marketplaces: list[MarketplaceRead]
    connected_at: UtcDateTime | None
    last_checked_at: UtcDateTime | None
    last_sync_at: UtcDateTime | None = Field(description="When orders last came from Amazon.")
    synced_through: UtcDateTime | None = Field(
        description="Every change Amazon made to the orders before this is stored (the "
        "incremental sync's watermark)."
    )
    next_sync_at: UtcDateTime | None = Field(
        description="When the next incremental sync is due (CONNECTED connections only)."
    )
    action: ConnectionAction | None = Field(description="What to do next, when needed.")
    reconnect_url: str | None = Field(
        description="Where to POST to (re)start the authorization, when one is needed."
    )


class ConnectionList(Schema):
    items: list[ConnectionRead]

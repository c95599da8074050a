"""Amazon regions, marketplaces and the URLs KeyBuzz calls (spapi.md §5, §6, §9).

Production hosts by default, Amazon's sandbox hosts with ``KEYBUZZ_SPAPI_SANDBOX``, and any base
URL (the simulator) with ``KEYBUZZ_SPAPI_ENDPOINT`` / ``KEYBUZZ_LWA_TOKEN_URL`` /
``KEYBUZZ_SELLER_CENTRAL_URL``, which override every region.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlencode

from keybuzz.amazon.config import SpApiConfig

LWA_TOKEN_URL = "https://api.amazon.com/auth/o2/token"
CONSENT_PATH = "/apps/authorize/consent"


class Region(StrEnum):
    NA = "NA"
    EU = "EU"
    FE = "FE"


SPAPI_HOSTS = {
    Region.NA: "https://sellingpartnerapi-na.amazon.com",
    Region.EU: "https://sellingpartnerapi-eu.amazon.com",
    Region.FE: "https://sellingpartnerapi-fe.amazon.com",
}
SANDBOX_HOSTS = {
    Region.NA: "https://sandbox.sellingpartnerapi-na.amazon.com",
    Region.EU: "https://sandbox.sellingpartnerapi-eu.amazon.com",
    Region.FE: "https://sandbox.sellingpartnerapi-fe.amazon.com",
}
# The Seller Central a region's consent link opens when no marketplace is named.
REGION_SELLER_CENTRAL = {
    Region.NA: "https://sellercentral.amazon.com",
    Region.EU: "https://sellercentral-europe.amazon.com",
    Region.FE: "https://sellercentral.amazon.co.jp",
}


@dataclass(frozen=True, slots=True)
class Marketplace:
    id: str
    code: str
    """Amazon's country code (``UK`` for the United Kingdom)."""
    country_code: str
    """ISO 3166-1 alpha-2, as in addresses (``GB``)."""
    name: str
    """The sales channel name orders carry, e.g. ``Amazon.fr``."""
    currency: str
    region: Region
    seller_central: str
    domain: str


_EUROPE = "https://sellercentral-europe.amazon.com"
# FR, DE, ES, IT and UK share Seller Central Europe; every other marketplace has
# sellercentral.<its domain> (ZA, EG and SA by that pattern: they are not in spapi.md's table).
_SHARED_EUROPE = frozenset({"FR", "DE", "ES", "IT", "UK"})
_TABLE = (
    # id, Amazon code, sales channel name, currency, region
    ("A2EUQ1WTGCTBG2", "CA", "Amazon.ca", "CAD", Region.NA),
    ("ATVPDKIKX0DER", "US", "Amazon.com", "USD", Region.NA),
    ("A1AM78C64UM0Y8", "MX", "Amazon.com.mx", "MXN", Region.NA),
    ("A2Q3Y263D00KWC", "BR", "Amazon.com.br", "BRL", Region.NA),
    ("A28R8C7NBKEWEA", "IE", "Amazon.ie", "EUR", Region.EU),
    ("A1RKKUPIHCS9HS", "ES", "Amazon.es", "EUR", Region.EU),
    ("A1F83G8C2ARO7P", "UK", "Amazon.co.uk", "GBP", Region.EU),
    ("A13V1IB3VIYZZH", "FR", "Amazon.fr", "EUR", Region.EU),
    ("AMEN7PMS3EDWL", "BE", "Amazon.com.be", "EUR", Region.EU),
    ("A1805IZSGTT6HS", "NL", "Amazon.nl", "EUR", Region.EU),
    ("A1PA6795UKMFR9", "DE", "Amazon.de", "EUR", Region.EU),
    ("APJ6JRA9NG5V4", "IT", "Amazon.it", "EUR", Region.EU),
    ("A2NODRKZP88ZB9", "SE", "Amazon.se", "SEK", Region.EU),
    ("AE08WJ6YKNBMC", "ZA", "Amazon.co.za", "ZAR", Region.EU),
    ("A1C3SOZRARQ6R3", "PL", "Amazon.pl", "PLN", Region.EU),
    ("ARBP9OOSHTCHU", "EG", "Amazon.eg", "EGP", Region.EU),
    ("A33AVAJ2PDY3EV", "TR", "Amazon.com.tr", "TRY", Region.EU),
    ("A17E79C6D8DWNP", "SA", "Amazon.sa", "SAR", Region.EU),
    ("A2VIGQ35RCS4UG", "AE", "Amazon.ae", "AED", Region.EU),
    ("A21TJRUUN4KGV", "IN", "Amazon.in", "INR", Region.EU),
    ("A19VAU5U5O7RUS", "SG", "Amazon.sg", "SGD", Region.FE),
    ("A39IBJ37TRP1C6", "AU", "Amazon.com.au", "AUD", Region.FE),
    ("A1VC38T7YXB528", "JP", "Amazon.co.jp", "JPY", Region.FE),
)
_ALL = tuple(
    Marketplace(
        id=marketplace_id,
        code=code,
        country_code="GB" if code == "UK" else code,
        name=name,
        currency=currency,
        region=region,
        seller_central=_EUROPE
        if code in _SHARED_EUROPE
        else f"https://sellercentral.{name.lower()}",
        domain=f"www.{name.lower()}",
    )
    for marketplace_id, code, name, currency, region in _TABLE
)
MARKETPLACES: dict[str, Marketplace] = {m.id: m for m in _ALL}
_BY_NAME: dict[str, Marketplace] = {m.name.lower(): m for m in _ALL}


def marketplace(marketplace_id: str) -> Marketplace:
    """The marketplace of an id; ``KeyError`` for an id Amazon does not list."""
    return MARKETPLACES[marketplace_id]


def region_of(marketplace_id: str) -> Region:
    return MARKETPLACES[marketplace_id].region


def marketplace_by_sales_channel(sales_channel: str) -> Marketplace | None:
    """``Amazon.fr`` -> France; ``None`` for other channels (e.g. ``Non-Amazon`` MCF orders)."""
    return _BY_NAME.get(sales_channel.strip().lower())


@dataclass(frozen=True, slots=True)
class Endpoints:
    spapi: str
    lwa_token_url: str
    seller_central: str


def endpoints(config: SpApiConfig, region: Region) -> Endpoints:
    hosts = SANDBOX_HOSTS if config.sandbox else SPAPI_HOSTS
    return Endpoints(
        spapi=(config.spapi_endpoint or hosts[region]).rstrip("/"),
        lwa_token_url=config.lwa_token_url or LWA_TOKEN_URL,
        seller_central=(config.seller_central_url or REGION_SELLER_CENTRAL[region]).rstrip("/"),
    )


def consent_url(
    config: SpApiConfig,
    region: Region,
    *,
    state: str,
    redirect_uri: str,
    marketplace_id: str | None = None,
) -> str:
    """Seller Central's consent page for KeyBuzz's app (website authorization workflow).

    ``marketplace_id`` picks that marketplace's Seller Central (e.g. Amazon.nl's own host);
    ``seller_central_url`` (``KEYBUZZ_SELLER_CENTRAL_URL``) still wins over it.
    """
    base = endpoints(config, region).seller_central
    if marketplace_id is not None and config.seller_central_url is None:
        base = marketplace(marketplace_id).seller_central
    params = {
        "application_id": config.application_id,
        "state": state,
        "redirect_uri": redirect_uri,
    }
    if config.app_draft:
        params["version"] = "beta"
    return f"{base}{CONSENT_PATH}?{urlencode(params)}"

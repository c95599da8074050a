"""Amazon marketplaces the simulator knows (spapi.md §9), with what orders need per country."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Marketplace:
    id: str
    code: str
    country: str
    name: str
    currency: str
    language: str
    locale: str
    region: str
    vat_percent: int
    decimals: int = 2

    @property
    def domain(self) -> str:
        return "www." + self.name.lower()


_ALL = (
    Marketplace("A13V1IB3VIYZZH", "FR", "FR", "Amazon.fr", "EUR", "fr_FR", "fr", "EU", 20),
    Marketplace("A1PA6795UKMFR9", "DE", "DE", "Amazon.de", "EUR", "de_DE", "de", "EU", 19),
    Marketplace("A1RKKUPIHCS9HS", "ES", "ES", "Amazon.es", "EUR", "es_ES", "es", "EU", 21),
    Marketplace("APJ6JRA9NG5V4", "IT", "IT", "Amazon.it", "EUR", "it_IT", "it", "EU", 22),
    Marketplace("A1F83G8C2ARO7P", "UK", "GB", "Amazon.co.uk", "GBP", "en_GB", "en", "EU", 20),
    Marketplace("A1805IZSGTT6HS", "NL", "NL", "Amazon.nl", "EUR", "nl_NL", "nl", "EU", 21),
    Marketplace("AMEN7PMS3EDWL", "BE", "BE", "Amazon.com.be", "EUR", "fr_BE", "fr", "EU", 21),
    Marketplace("A2NODRKZP88ZB9", "SE", "SE", "Amazon.se", "SEK", "sv_SE", "sv", "EU", 25),
    Marketplace("A1C3SOZRARQ6R3", "PL", "PL", "Amazon.pl", "PLN", "pl_PL", "pl", "EU", 23),
    Marketplace("A28R8C7NBKEWEA", "IE", "IE", "Amazon.ie", "EUR", "en_IE", "en", "EU", 23),
    Marketplace("ATVPDKIKX0DER", "US", "US", "Amazon.com", "USD", "en_US", "en", "NA", 0),
    Marketplace("A2EUQ1WTGCTBG2", "CA", "CA", "Amazon.ca", "CAD", "en_CA", "en", "NA", 0),
    Marketplace("A1VC38T7YXB528", "JP", "JP", "Amazon.co.jp", "JPY", "ja_JP", "ja", "FE", 10, 0),
)
MARKETPLACES: dict[str, Marketplace] = {m.id: m for m in _ALL}
BY_CODE: dict[str, Marketplace] = {m.code: m for m in _ALL}


def marketplace_ids_from_codes(codes: str) -> list[str]:
    """``"FR,DE"`` or ids -> marketplace ids; raises ``KeyError`` on an unknown one."""
    ids = []
    for raw in codes.split(","):
        token = raw.strip()
        if not token:
            continue
        ids.append(token if token in MARKETPLACES else BY_CODE[token.upper()].id)
    return ids

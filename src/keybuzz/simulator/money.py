"""Amounts in minor units -> Amazon's decimal strings (``"19.99"``, ``"1980"`` for yen)."""

from __future__ import annotations

from keybuzz.simulator.marketplaces import Marketplace


def decimal_string(minor: int, decimals: int) -> str:
    if decimals == 0:
        return str(minor)
    sign = "-" if minor < 0 else ""
    units, fraction = divmod(abs(minor), 10**decimals)
    return f"{sign}{units}.{fraction:0{decimals}d}"


def money_v0(minor: int, marketplace: Marketplace) -> dict[str, str]:
    return {
        "CurrencyCode": marketplace.currency,
        "Amount": decimal_string(minor, marketplace.decimals),
    }


def money_v2026(minor: int, marketplace: Marketplace) -> dict[str, str]:
    return {
        "amount": decimal_string(minor, marketplace.decimals),
        "currencyCode": marketplace.currency,
    }

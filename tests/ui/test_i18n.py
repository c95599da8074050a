"""Every word of the pages exists in French and in English: the message table has the same keys
in both, and every key the templates and the page's script ask for is in it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from keybuzz.amazon.regions import Region
from keybuzz.marketplaces.models import ConnectionStatus
from keybuzz.orders.models import EventField, EventSource
from keybuzz.sync.models import BackfillPhase, BackfillStatus
from keybuzz.ui.i18n import ENGLISH, FRENCH, MESSAGES, Translator, language_of
from keybuzz.ui.schemas import SORTS, STATUS_FILTERS

UI = Path(__file__).resolve().parents[2] / "src" / "keybuzz" / "ui"
LITERAL_KEY = re.compile(r"""\bt\(\s*["']([A-Za-z.\-_]+)["']\s*[,)]""")


def keys_used_in(*patterns: str) -> set[str]:
    return {
        key
        for pattern in patterns
        for path in UI.glob(pattern)
        for key in LITERAL_KEY.findall(path.read_text())
    }


def keys_built_from_values() -> set[str]:
    """Keys the script and templates build from a value: ``orderStatus.SHIPPED``..."""
    families: dict[str, list[str]] = {
        **{name: list(values) for name, values in STATUS_FILTERS.items()},
        "status": list(ConnectionStatus),
        "phase": list(BackfillPhase),
        "job": list(BackfillStatus),
        "ended": [BackfillStatus.SUCCEEDED, BackfillStatus.FAILED, BackfillStatus.CANCELLED],
        "field": list(EventField),
        "source": list(EventSource),
        "region": list(Region),
        "sort": list(SORTS),
        "filters": list(STATUS_FILTERS),
    }
    return {f"{family}.{value}" for family, values in families.items() for value in values}


def test_french_and_english_have_the_same_messages() -> None:
    assert set(FRENCH) == set(ENGLISH)


@pytest.mark.parametrize("language", sorted(MESSAGES))
def test_every_message_the_pages_ask_for_exists(language: str) -> None:
    used = keys_used_in("templates/*.html", "static/*.js") | keys_built_from_values()

    assert used - set(MESSAGES[language]) == set()  # type: ignore[index]


def test_the_message_fields_are_the_same_in_both_languages() -> None:
    for key, french in FRENCH.items():
        assert set(re.findall(r"\{(\w+)\}", french)) == set(
            re.findall(r"\{(\w+)\}", ENGLISH[key])
        ), key


def test_a_message_fills_its_fields() -> None:
    assert Translator("en")("list.count", count=3) == "3 orders shown"
    assert Translator("fr")("list.count", count=3) == "3 commandes affichées"


def test_french_is_the_default() -> None:
    assert language_of(None) == "fr"
    assert language_of("de") == "fr"
    assert language_of("en") == "en"

"""The Amazon secret's shape: validated on the way in and out, its token never printed."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import SecretStr, ValidationError

from keybuzz.secrets import AmazonSpapiSecret, SecretData, SecretMalformed, Stored
from keybuzz.tenants.models import TenantId
from tests.secrets.factories import refresh_token

AUTHORIZED_AT = dt.datetime(2026, 11, 27, 21, 0, tzinfo=dt.UTC)


def test_the_refresh_token_never_prints() -> None:
    token = refresh_token()
    secret = AmazonSpapiSecret(
        refresh_token=SecretStr(token),
        selling_partner_id="A3FAKESELLER",
        region="eu",
        authorized_at=AUTHORIZED_AT,
    )

    shown = [repr(secret), str(secret), secret.model_dump_json(), repr(secret.model_dump())]

    assert not [text for text in shown if token in text]
    assert "A3FAKESELLER" in repr(secret)
    assert secret.refresh_token.get_secret_value() == token


def test_it_round_trips_through_the_stores_text_fields() -> None:
    token = refresh_token()
    secret = AmazonSpapiSecret(
        refresh_token=SecretStr(token),
        selling_partner_id="A3FAKESELLER",
        region="eu",
        authorized_at=AUTHORIZED_AT,
    )

    data = secret.to_data()
    back = AmazonSpapiSecret.from_stored(Stored(data, 3), tenant_id=TenantId("ecomlg-001"))

    assert data.reveal() == {
        "refresh_token": token,
        "selling_partner_id": "A3FAKESELLER",
        "region": "eu",
        "authorized_at": "2026-11-27T21:00:00+00:00",
    }
    assert back == Stored(secret, 3)


def test_a_naive_authorization_time_is_refused() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        AmazonSpapiSecret(
            refresh_token=SecretStr(refresh_token()),
            selling_partner_id="A3FAKESELLER",
            region="eu",
            authorized_at=dt.datetime(2026, 11, 27, 21, 0),
        )


def test_an_invalid_stored_value_is_malformed_and_its_message_quotes_no_value() -> None:
    token = refresh_token() * 100  # longer than any real token: invalid
    data = SecretData(
        {
            "refresh_token": token,
            "selling_partner_id": "A3FAKESELLER",
            "region": "eu",
            "authorized_at": "yesterday",
        }
    )

    with pytest.raises(SecretMalformed) as malformed:
        AmazonSpapiSecret.from_stored(Stored(data, 7), tenant_id=TenantId("ecomlg-001"))

    assert str(malformed.value) == (
        "Secret amazon_spapi of tenant ecomlg-001 (version 7) has missing or invalid fields: "
        "authorized_at, refresh_token."
    )
    assert malformed.value.version == 7

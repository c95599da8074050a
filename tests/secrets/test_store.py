"""The contract every backend shares: wrapped values, key paths, and errors as HTTP problems."""

from __future__ import annotations

import socket

import httpx
import pytest
from fastapi import FastAPI

from keybuzz.problems import PROBLEM_JSON, register_error_handlers
from keybuzz.secrets import SecretData, SecretName, SecretStoreUnavailable
from keybuzz.secrets.keys import KeyRing, SecretKey, seal, unseal
from keybuzz.secrets.store import secret_path
from keybuzz.secrets.vault import VaultSecretStore
from keybuzz.tenants.models import TenantId
from tests.secrets.factories import refresh_token

AMAZON = SecretName.AMAZON_SPAPI


def test_secret_data_shows_field_names_never_values() -> None:
    token = refresh_token()
    data = SecretData({"refresh_token": token, "region": "eu"})

    shown = [repr(data), str(data), f"{data}", f"{data!r}", repr([data]), repr({"s": data})]

    assert shown[0] == "SecretData(fields=['refresh_token', 'region'])"
    assert not [text for text in shown if token in text]
    assert data.reveal() == {"refresh_token": token, "region": "eu"}
    assert data == SecretData({"region": "eu", "refresh_token": token})
    assert data != SecretData({"region": "eu", "refresh_token": refresh_token()})


def test_secret_data_holds_text_fields_only() -> None:
    with pytest.raises(TypeError, match="secret fields must be strings"):
        SecretData({"refresh_token": 42})  # type: ignore[dict-item]


def test_keys_live_under_the_tenants_prefix_and_tenant_ids_cannot_escape_it() -> None:
    assert secret_path(TenantId("ecomlg-001"), AMAZON) == "keybuzz/tenants/ecomlg-001/amazon_spapi"
    for hostile in ("../admin", "a/b", "", "A", "ecomlg-001/../x"):
        with pytest.raises(ValueError, match="not a valid tenant id"):
            secret_path(TenantId(hostile), AMAZON)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_errors_reach_api_clients_as_problems_without_secret_values() -> None:
    token = refresh_token()
    ring = KeyRing(SecretKey.generate())
    other_tenants = seal(ring, token.encode(), tenant_id="rival-002", name=AMAZON, version=1)
    down = VaultSecretStore(addr=f"http://127.0.0.1:{_closed_port()}", token="t", timeout=1)
    app = FastAPI()
    register_error_handlers(app)

    @app.get("/sealed")
    async def sealed() -> None:
        await down.read(TenantId("ecomlg-001"), AMAZON)

    @app.get("/swapped")
    async def swapped() -> None:
        unseal(ring, other_tenants, tenant_id="ecomlg-001", name=AMAZON, version=1)

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        unavailable = await client.get("/sealed")
        corrupted = await client.get("/swapped")
    await down.aclose()

    assert unavailable.status_code == 503
    assert unavailable.headers["content-type"] == PROBLEM_JSON
    assert unavailable.headers["retry-after"] == str(SecretStoreUnavailable.retry_after_seconds)
    assert unavailable.json()["code"] == "secret_store_unavailable"
    assert "retry in a few seconds" in unavailable.json()["detail"]
    assert corrupted.status_code == 500
    assert corrupted.json()["code"] == "secret_corrupted"
    assert "Secret amazon_spapi of tenant ecomlg-001 (version 1) failed" in corrupted.text
    assert token not in corrupted.text

"""``keybuzz secrets ...`` as an operator runs it, on a committed database."""

from __future__ import annotations

import asyncio
import base64
import stat
from collections.abc import Iterator

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select, update
from typer.testing import Result

from keybuzz.config import Settings
from keybuzz.db import create_engine, create_sessionmaker, cross_tenant, transaction
from keybuzz.secrets import (
    MissingSecret,
    SecretBackend,
    SecretKeyUnknown,
    SecretName,
    Stored,
)
from keybuzz.secrets.keys import KeyFile, SecretKey, key_source
from keybuzz.secrets.models import TenantSecret
from keybuzz.secrets.store import SecretData
from keybuzz.secrets.vault import app_policy
from keybuzz.tenants.models import TenantId
from tests.cli_helpers import database_env, run_cli
from tests.factories import make_tenant
from tests.fixtures.vault import VaultServer
from tests.secrets.factories import amazon_data, local_backend, refresh_token

AMAZON = SecretName.AMAZON_SPAPI
SECRET_SETTINGS = (
    "KEYBUZZ_SECRETS_BACKEND",
    "KEYBUZZ_SECRETS_KEY",
    "KEYBUZZ_SECRETS_PREVIOUS_KEY",
    "KEYBUZZ_SECRETS_KEY_FILE",
    "KEYBUZZ_VAULT_ADDR",
    "KEYBUZZ_VAULT_TOKEN",
    "KEYBUZZ_VAULT_ROLE_ID",
    "KEYBUZZ_VAULT_SECRET_ID",
)


@pytest.fixture
def operator(
    monkeypatch: pytest.MonkeyPatch, fresh_database_url: str, settings: Settings
) -> Iterator[Settings]:
    """The environment the CLI runs in: a committed database and a data folder of its own."""
    for name in SECRET_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KEYBUZZ_DATA_DIR", str(settings.data_dir))
    with database_env(monkeypatch, fresh_database_url):
        yield settings.model_copy(update={"database_url": SecretStr(fresh_database_url)})


async def cli(*args: str) -> Result:
    return await asyncio.to_thread(run_cli, *args)


def said(result: Result) -> str:
    """The output as one line, however the terminal wrapped it."""
    return " ".join(result.output.split())


def _url(settings: Settings) -> str:
    assert settings.database_url is not None
    return settings.database_url.get_secret_value()


async def seed(
    settings: Settings, backend: SecretBackend, *, live: int = 2, deleted: int = 1
) -> dict[TenantId, SecretData]:
    """Tenants with a stored Amazon secret (``live``) or a deleted one; the live values."""
    stored: dict[TenantId, SecretData] = {}
    engine = create_engine(_url(settings), pool_size=1)
    try:
        async with transaction(create_sessionmaker(engine)) as session:
            store = backend.store(session)
            for n in range(live + deleted):
                tenant = (await make_tenant(session, f"tenant-{n:03d}")).id
                data = amazon_data()
                await store.write(tenant, AMAZON, data, cas=0)
                if n < live:
                    stored[tenant] = data
                else:
                    await store.delete(tenant, AMAZON)
    finally:
        await engine.dispose()
    return stored


async def read_back(
    settings: Settings, backend: SecretBackend, tenants: list[TenantId]
) -> dict[TenantId, Stored[SecretData] | MissingSecret]:
    engine = create_engine(_url(settings), pool_size=1)
    try:
        async with transaction(create_sessionmaker(engine)) as session:
            store = backend.store(session)
            return {tenant: await store.read(tenant, AMAZON) for tenant in tenants}
    finally:
        await engine.dispose()


async def secrets_per_key(settings: Settings) -> dict[str | None, int]:
    engine = create_engine(_url(settings), pool_size=1)
    try:
        async with transaction(create_sessionmaker(engine)) as session:
            counts = select(TenantSecret.key_id, func.count(TenantSecret.tenant_id))
            rows = await session.execute(
                cross_tenant(counts.group_by(TenantSecret.key_id), "secrets per key, all tenants")
            )
            return {key_id: count for key_id, count in rows}
    finally:
        await engine.dispose()


async def test_rotate_key_reencrypts_every_secret_and_retires_the_old_key(
    operator: Settings,
) -> None:
    keys = key_source(operator)
    assert isinstance(keys, KeyFile)
    old = keys.current().primary
    stored = await seed(operator, local_backend(old))

    result = await cli("secrets", "rotate-key")

    assert result.exit_code == 0, result.output
    ring = KeyFile(keys.path).current()
    new = ring.primary
    assert ring.others == ()
    assert new.id != old.id
    assert f"Re-encrypted 2 of 2 stored secrets; all are now under key {new.id}." in said(result)
    assert f"Retired key {old.id} from {keys.path}." in said(result)
    assert stat.S_IMODE(keys.path.stat().st_mode) == 0o600
    assert await secrets_per_key(operator) == {new.id: 2, None: 1}
    tenants = list(stored)
    assert await read_back(operator, local_backend(new), tenants) == {
        tenant: Stored(data, 1) for tenant, data in stored.items()
    }
    with pytest.raises(SecretKeyUnknown):
        await read_back(operator, local_backend(old), tenants)


async def test_rotating_an_environment_key_uses_the_previous_key_then_says_to_remove_it(
    operator: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = SecretKey.generate(), SecretKey.generate()
    stored = await seed(operator, local_backend(old))
    monkeypatch.setenv("KEYBUZZ_SECRETS_KEY", new.encoded())
    monkeypatch.setenv("KEYBUZZ_SECRETS_PREVIOUS_KEY", old.encoded())

    result = await cli("secrets", "rotate-key")

    assert result.exit_code == 0, result.output
    assert (
        f"Re-encrypted 2 of 2 stored secrets; all are now under key {new.id} "
        "(KEYBUZZ_SECRETS_KEY)." in said(result)
    )
    assert f"remove KEYBUZZ_SECRETS_PREVIOUS_KEY (key {old.id})" in said(result)
    assert old.encoded() not in result.output
    assert new.encoded() not in result.output
    assert await secrets_per_key(operator) == {new.id: 2, None: 1}
    assert await read_back(operator, local_backend(new), list(stored)) == {
        tenant: Stored(data, 1) for tenant, data in stored.items()
    }


async def test_rotating_an_environment_key_without_a_new_one_explains_the_steps(
    operator: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEYBUZZ_SECRETS_KEY", SecretKey.generate().encoded())

    result = await cli("secrets", "rotate-key")

    assert result.exit_code == 1
    assert "keybuzz secrets generate-key" in result.output
    assert "KEYBUZZ_SECRETS_PREVIOUS_KEY=<the current KEYBUZZ_SECRETS_KEY>" in result.output


async def test_a_secret_that_cannot_be_decrypted_aborts_the_rotation_and_keeps_the_old_key(
    operator: Settings,
) -> None:
    keys = key_source(operator)
    assert isinstance(keys, KeyFile)
    old = keys.current().primary
    stored = await seed(operator, local_backend(old), deleted=0)
    damaged, intact = list(stored)
    engine = create_engine(_url(operator), pool_size=1)
    async with transaction(create_sessionmaker(engine)) as session:
        await session.execute(
            update(TenantSecret)
            .where(TenantSecret.tenant_id == damaged, TenantSecret.name == AMAZON)
            .values(ciphertext=func.substring(TenantSecret.ciphertext, 1, 20))
        )
    await engine.dispose()

    result = await cli("secrets", "rotate-key")

    assert result.exit_code == 2
    assert "Rotation aborted: no secret was changed and no key was retired." in said(result)
    assert (
        f"Error: Secret amazon_spapi of tenant {damaged} (version 1) failed its integrity check"
        in said(result)
    )
    assert await secrets_per_key(operator) == {old.id: 2}
    still_readable = await read_back(
        operator, local_backend(*KeyFile(keys.path).current().keys), [intact]
    )
    assert still_readable == {intact: Stored(stored[intact], 1)}


async def test_status_shows_keys_and_counts_never_values(operator: Settings) -> None:
    keys = key_source(operator)
    token = refresh_token()
    await seed(operator, local_backend(keys.current().primary), live=0, deleted=1)
    engine = create_engine(_url(operator), pool_size=1)
    async with transaction(create_sessionmaker(engine)) as session:
        tenant = (await make_tenant(session, "ecomlg-001")).id
        await (
            local_backend(keys.current().primary)
            .store(session)
            .write(tenant, AMAZON, amazon_data(token), cas=0)
        )
    await engine.dispose()

    result = await cli("secrets", "status")

    assert result.exit_code == 0, result.output
    key_id = keys.current().primary.id
    assert "local (AES-256-GCM in PostgreSQL table tenant_secrets)" in said(result)
    assert f"encrypting key {key_id}" in said(result)
    assert f"stored secrets 1 ({key_id}: 1)" in said(result)
    assert "deleted secrets 1" in said(result)
    assert token not in result.output
    assert keys.current().primary.encoded() not in result.output


async def test_status_of_the_vault_backend_shows_the_server_state(
    operator: Settings, monkeypatch: pytest.MonkeyPatch, vault_server: VaultServer
) -> None:
    monkeypatch.setenv("KEYBUZZ_SECRETS_BACKEND", "vault")
    monkeypatch.setenv("KEYBUZZ_VAULT_ADDR", vault_server.addr)
    monkeypatch.setenv("KEYBUZZ_VAULT_TOKEN", vault_server.root_token)

    result = await cli("secrets", "status")

    assert result.exit_code == 0, result.output
    assert "vault (KV v2)" in said(result)
    assert f"address {vault_server.addr}" in said(result)
    assert "server unsealed" in said(result)
    assert vault_server.root_token not in result.output


async def test_rotate_key_refuses_the_vault_backend(
    operator: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEYBUZZ_SECRETS_BACKEND", "vault")

    result = await cli("secrets", "rotate-key")

    assert result.exit_code == 2
    assert "rotate-key re-encrypts the local store" in said(result)


async def test_generate_key_prints_a_fresh_32_byte_key_each_time(operator: Settings) -> None:
    first, second = await cli("secrets", "generate-key"), await cli("secrets", "generate-key")

    assert first.exit_code == 0
    assert len(base64.urlsafe_b64decode(first.output.strip())) == 32
    assert first.output != second.output
    assert not (operator.data_dir / "secrets.key").exists()


async def test_vault_policy_prints_the_policy_the_docs_grant(operator: Settings) -> None:
    result = await cli("secrets", "vault-policy")

    assert result.exit_code == 0
    assert result.output == app_policy("secret")

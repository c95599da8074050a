"""The encrypted PostgreSQL store: Vault's versions and check-and-set, crypto that fails closed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.config import Settings
from keybuzz.db import create_engine, create_sessionmaker, transaction
from keybuzz.secrets import (
    Absence,
    MissingSecret,
    SecretConflict,
    SecretCorrupted,
    SecretData,
    SecretKeyUnknown,
    SecretName,
    SecretStore,
    Stored,
    open_secret_backend,
)
from keybuzz.secrets.keys import SecretKey
from keybuzz.secrets.models import TenantSecret
from keybuzz.tenants.models import TenantId
from tests.factories import TenantCredentials, make_tenant
from tests.secrets.factories import amazon_data, local_backend, refresh_token

AMAZON = SecretName.AMAZON_SPAPI


@pytest.fixture
def key() -> SecretKey:
    return SecretKey.generate()


@pytest.fixture
def store(session: AsyncSession, key: SecretKey) -> SecretStore:
    return local_backend(key).store(session)


async def _row(session: AsyncSession, tenant_id: str) -> TenantSecret:
    row = await session.scalar(
        select(TenantSecret)
        .where(TenantSecret.tenant_id == tenant_id, TenantSecret.name == AMAZON)
        .execution_options(populate_existing=True)
    )
    assert row is not None
    return row


async def _set_row(session: AsyncSession, tenant_id: str, **values: object) -> None:
    await session.execute(
        update(TenantSecret)
        .where(TenantSecret.tenant_id == tenant_id, TenantSecret.name == AMAZON)
        .values(**values)
    )


async def test_round_trip_with_versions_and_check_and_set_as_in_vault(
    store: SecretStore, tenant: TenantCredentials
) -> None:
    first, second, reconnected = amazon_data(), amazon_data(), amazon_data()

    assert await store.read(tenant.id, AMAZON) == MissingSecret(Absence.NEVER_WRITTEN, 0)
    assert await store.exists(tenant.id, AMAZON) is False
    assert await store.write(tenant.id, AMAZON, first, cas=0) == 1
    assert await store.read(tenant.id, AMAZON) == Stored(first, 1)
    assert await store.exists(tenant.id, AMAZON) is True
    with pytest.raises(SecretConflict):
        await store.write(tenant.id, AMAZON, second, cas=0)
    assert await store.write(tenant.id, AMAZON, second, cas=1) == 2
    with pytest.raises(SecretConflict) as stale:
        await store.write(tenant.id, AMAZON, first, cas=1)
    assert await store.read(tenant.id, AMAZON) == Stored(second, 2)

    assert await store.delete(tenant.id, AMAZON) is True
    assert await store.delete(tenant.id, AMAZON) is False
    assert await store.read(tenant.id, AMAZON) == MissingSecret(Absence.DELETED, 2)
    assert await store.exists(tenant.id, AMAZON) is False
    with pytest.raises(SecretConflict):
        await store.write(tenant.id, AMAZON, reconnected, cas=0)
    assert await store.write(tenant.id, AMAZON, reconnected, cas=2) == 3
    assert await store.read(tenant.id, AMAZON) == Stored(reconnected, 3)
    assert (stale.value.status, stale.value.code) == (409, "secret_version_conflict")


async def test_a_row_deleted_behind_the_apps_back_reads_as_never_written(
    session: AsyncSession, store: SecretStore, tenant: TenantCredentials
) -> None:
    await store.write(tenant.id, AMAZON, amazon_data(), cas=0)

    await session.execute(
        text("DELETE FROM tenant_secrets WHERE tenant_id = :tenant"), {"tenant": tenant.id}
    )

    assert await store.read(tenant.id, AMAZON) == MissingSecret(Absence.NEVER_WRITTEN, 0)
    assert await store.exists(tenant.id, AMAZON) is False


async def test_tenants_do_not_see_each_others_secrets(
    store: SecretStore, tenant: TenantCredentials, other_tenant: TenantCredentials
) -> None:
    await store.write(tenant.id, AMAZON, amazon_data(), cas=0)

    assert await store.read(other_tenant.id, AMAZON) == MissingSecret(Absence.NEVER_WRITTEN, 0)
    assert await store.delete(other_tenant.id, AMAZON) is False
    assert await store.exists(tenant.id, AMAZON) is True


async def test_the_database_holds_ciphertext_only(
    session: AsyncSession, store: SecretStore, tenant: TenantCredentials, key: SecretKey
) -> None:
    token = refresh_token()
    await store.write(tenant.id, AMAZON, amazon_data(token), cas=0)

    dumped = await session.scalar(
        text("SELECT row_to_json(s)::text FROM tenant_secrets s WHERE tenant_id = :tenant"),
        {"tenant": tenant.id},
    )
    row = await _row(session, tenant.id)

    assert dumped is not None
    assert token not in dumped
    assert "A3FAKESELLER" not in dumped
    assert row.ciphertext is not None
    assert token.encode() not in row.ciphertext
    assert row.key_id == key.id
    assert row.nonce is not None
    assert len(row.nonce) == 12


async def test_ciphertext_swapped_between_tenants_fails_closed(
    session: AsyncSession,
    store: SecretStore,
    tenant: TenantCredentials,
    other_tenant: TenantCredentials,
) -> None:
    token, other_token = refresh_token(), refresh_token()
    await store.write(tenant.id, AMAZON, amazon_data(token), cas=0)
    await store.write(other_tenant.id, AMAZON, amazon_data(other_token), cas=0)
    theirs = await _row(session, other_tenant.id)

    await _set_row(
        session, tenant.id, key_id=theirs.key_id, nonce=theirs.nonce, ciphertext=theirs.ciphertext
    )

    with pytest.raises(SecretCorrupted) as corrupted:
        await store.read(tenant.id, AMAZON)
    error = corrupted.value
    assert (error.status, error.code, error.version) == (500, "secret_corrupted", 1)
    assert f"Secret amazon_spapi of tenant {tenant.id} (version 1) failed" in str(error)
    assert other_token not in str(error)
    assert other_token not in repr(error)
    assert isinstance(await store.read(other_tenant.id, AMAZON), Stored)


async def test_an_older_versions_ciphertext_replayed_as_the_latest_fails_closed(
    session: AsyncSession, store: SecretStore, tenant: TenantCredentials
) -> None:
    await store.write(tenant.id, AMAZON, amazon_data(), cas=0)
    old = await _row(session, tenant.id)
    old_columns = {"key_id": old.key_id, "nonce": old.nonce, "ciphertext": old.ciphertext}
    await store.write(tenant.id, AMAZON, amazon_data(), cas=1)

    await _set_row(session, tenant.id, **old_columns)

    with pytest.raises(SecretCorrupted):
        await store.read(tenant.id, AMAZON)


@pytest.mark.parametrize(
    "damage",
    [
        lambda ciphertext, nonce: {"ciphertext": ciphertext[:-1]},
        lambda ciphertext, nonce: {"ciphertext": ciphertext[:10]},
        lambda ciphertext, nonce: {"ciphertext": b""},
        lambda ciphertext, nonce: {"ciphertext": ciphertext[:-1] + bytes([ciphertext[-1] ^ 1])},
        lambda ciphertext, nonce: {"nonce": nonce[:-1]},
    ],
    ids=["one-byte-short", "10-bytes", "empty", "one-bit-flipped", "short-nonce"],
)
async def test_truncated_or_altered_ciphertext_fails_closed(
    session: AsyncSession,
    store: SecretStore,
    tenant: TenantCredentials,
    damage: Callable[[bytes, bytes], dict[str, bytes]],
) -> None:
    token = refresh_token()
    await store.write(tenant.id, AMAZON, amazon_data(token), cas=0)
    row = await _row(session, tenant.id)
    assert row.ciphertext is not None
    assert row.nonce is not None
    values = damage(row.ciphertext, row.nonce)

    await _set_row(session, tenant.id, **values)

    with pytest.raises(SecretCorrupted) as corrupted:
        await store.read(tenant.id, AMAZON)
    assert token not in str(corrupted.value)


async def test_a_wrong_key_fails_closed_and_names_the_keys(
    session: AsyncSession, store: SecretStore, tenant: TenantCredentials, key: SecretKey
) -> None:
    await store.write(tenant.id, AMAZON, amazon_data(), cas=0)
    wrong = SecretKey.generate()

    with pytest.raises(SecretKeyUnknown) as unknown:
        await local_backend(wrong).store(session).read(tenant.id, AMAZON)
    await _set_row(session, tenant.id, key_id=wrong.id)  # a row claiming the wrong key's id
    with pytest.raises(SecretCorrupted):
        await local_backend(wrong).store(session).read(tenant.id, AMAZON)

    assert unknown.value.code == "secret_key_unknown"
    assert f"encrypted with key {key.id}, which is not configured" in str(unknown.value)
    assert f"(configured: {wrong.id})" in str(unknown.value)


async def test_a_conflicting_write_leaves_the_callers_transaction_usable(
    session: AsyncSession, store: SecretStore, tenant: TenantCredentials
) -> None:
    await store.write(tenant.id, AMAZON, amazon_data(), cas=0)

    with pytest.raises(SecretConflict):
        await store.write(tenant.id, AMAZON, amazon_data(), cas=0)

    assert await session.scalar(text("SELECT 1")) == 1


@pytest.fixture
async def committed_tenant(fresh_database_url: str) -> tuple[str, TenantId]:
    engine = create_engine(fresh_database_url, pool_size=1)
    try:
        async with transaction(create_sessionmaker(engine)) as session:
            created = await make_tenant(session, "ecomlg-001")
    finally:
        await engine.dispose()
    return fresh_database_url, created.id


async def test_of_8_concurrent_rewrites_in_separate_transactions_exactly_one_wins(
    committed_tenant: tuple[str, TenantId], settings: Settings
) -> None:
    url, tenant_id = committed_tenant
    backend = open_secret_backend(settings)
    engine = create_engine(url, pool_size=8)
    sessions = create_sessionmaker(engine)
    async with transaction(sessions) as session:
        await backend.store(session).write(tenant_id, AMAZON, amazon_data(), cas=0)
    candidates = [amazon_data() for _ in range(8)]

    async def rewrite(data: SecretData) -> int:
        async with transaction(sessions) as session:
            version = await backend.store(session).write(tenant_id, AMAZON, data, cas=1)
            await asyncio.sleep(0.05)  # hold the row while the others queue behind it
            return version

    try:
        outcomes = await asyncio.gather(*map(rewrite, candidates), return_exceptions=True)
        async with transaction(sessions) as session:
            final = await backend.store(session).read(tenant_id, AMAZON)
    finally:
        await engine.dispose()

    winners = [i for i, outcome in enumerate(outcomes) if outcome == 2]
    assert len(winners) == 1
    assert sum(isinstance(outcome, SecretConflict) for outcome in outcomes) == 7
    assert final == Stored(candidates[winners[0]], 2)

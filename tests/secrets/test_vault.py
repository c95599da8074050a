"""The Vault store against a real OpenBao server."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from pathlib import Path

import hvac
import hvac.exceptions
import pytest

from keybuzz.secrets import (
    Absence,
    MissingSecret,
    SecretAccessDenied,
    SecretConflict,
    SecretName,
    SecretStoreMisconfigured,
    SecretStoreUnavailable,
    Stored,
    open_secret_backend,
)
from keybuzz.secrets.store import secret_path
from keybuzz.secrets.vault import VaultSecretStore
from keybuzz.tenants.models import TenantId
from tests.fixtures.vault import APPROLE_NAME, AppRoleCredentials, VaultServer, vault_settings
from tests.secrets.factories import amazon_data

AMAZON = SecretName.AMAZON_SPAPI


def approle_store(server: VaultServer, credentials: AppRoleCredentials) -> VaultSecretStore:
    return VaultSecretStore(addr=server.addr, approle=(credentials.role_id, credentials.secret_id))


def revoke_approle_tokens(admin: hvac.Client) -> None:
    """What an operator revoking the application's tokens does."""
    for accessor in admin.auth.token.list_accessors()["data"]["keys"]:
        token = admin.auth.token.lookup_accessor(accessor)["data"]
        if (token.get("meta") or {}).get("role_name") == APPROLE_NAME:
            admin.auth.token.revoke_accessor(accessor)


async def test_the_first_write_needs_cas_0_and_a_rewrite_the_version_it_read(
    vault_store: VaultSecretStore, tenant_id: TenantId
) -> None:
    first, second = amazon_data(), amazon_data()

    assert await vault_store.read(tenant_id, AMAZON) == MissingSecret(Absence.NEVER_WRITTEN, 0)
    assert await vault_store.write(tenant_id, AMAZON, first, cas=0) == 1
    with pytest.raises(SecretConflict):
        await vault_store.write(tenant_id, AMAZON, second, cas=0)
    assert await vault_store.read(tenant_id, AMAZON) == Stored(first, 1)
    assert await vault_store.write(tenant_id, AMAZON, second, cas=1) == 2
    with pytest.raises(SecretConflict) as stale:
        await vault_store.write(tenant_id, AMAZON, first, cas=1)

    assert await vault_store.read(tenant_id, AMAZON) == Stored(second, 2)
    assert await vault_store.exists(tenant_id, AMAZON)
    assert stale.value.status == 409
    assert stale.value.code == "secret_version_conflict"
    assert "no longer at version 1" in str(stale.value)


async def test_of_8_concurrent_rewrites_with_the_same_version_exactly_one_wins(
    vault_store: VaultSecretStore, tenant_id: TenantId
) -> None:
    await vault_store.write(tenant_id, AMAZON, amazon_data(), cas=0)
    candidates = [amazon_data() for _ in range(8)]

    outcomes = await asyncio.gather(
        *(vault_store.write(tenant_id, AMAZON, data, cas=1) for data in candidates),
        return_exceptions=True,
    )

    winners = [i for i, outcome in enumerate(outcomes) if outcome == 2]
    conflicts = [outcome for outcome in outcomes if isinstance(outcome, SecretConflict)]
    assert len(winners) == 1
    assert len(conflicts) == 7
    assert await vault_store.read(tenant_id, AMAZON) == Stored(candidates[winners[0]], 2)


async def test_every_key_written_requires_check_and_set(
    vault_server: VaultServer, vault_store: VaultSecretStore, tenant_id: TenantId
) -> None:
    await vault_store.write(tenant_id, AMAZON, amazon_data(), cas=0)
    admin = vault_server.admin().secrets.kv.v2

    tenants = admin.list_secrets(path="keybuzz/tenants")["data"]["keys"]
    keys = [
        f"keybuzz/tenants/{folder}{name}"
        for folder in tenants
        for name in admin.list_secrets(path=f"keybuzz/tenants/{folder}")["data"]["keys"]
    ]
    metadata = [admin.read_secret_metadata(path=key)["data"] for key in keys]
    with pytest.raises(hvac.exceptions.InvalidRequest, match="check-and-set parameter required"):
        admin.create_or_update_secret(path=secret_path(tenant_id, AMAZON), secret={"x": "y"})

    assert secret_path(tenant_id, AMAZON) in keys
    assert [m["cas_required"] for m in metadata] == [True] * len(keys)
    assert {m["max_versions"] for m in metadata} == {5}


def _soft_delete(admin: hvac.Client, path: str) -> None:
    admin.secrets.kv.v2.delete_latest_version_of_secret(path=path)


def _destroy(admin: hvac.Client, path: str) -> None:
    admin.secrets.kv.v2.destroy_secret_versions(path=path, versions=[1])


def _delete_metadata(admin: hvac.Client, path: str) -> None:
    admin.secrets.kv.v2.delete_metadata_and_all_versions(path=path)


@pytest.mark.parametrize(
    ("remove", "expected"),
    [
        (_soft_delete, MissingSecret(Absence.DELETED, 1)),
        (_destroy, MissingSecret(Absence.DESTROYED, 1)),
        (_delete_metadata, MissingSecret(Absence.NEVER_WRITTEN, 0)),
    ],
    ids=["soft-deleted", "destroyed", "metadata-deleted"],
)
async def test_a_secret_removed_behind_the_apps_back_reads_as_absent_and_can_be_rewritten(
    vault_server: VaultServer,
    vault_store: VaultSecretStore,
    tenant_id: TenantId,
    remove: Callable[[hvac.Client, str], None],
    expected: MissingSecret,
) -> None:
    await vault_store.write(tenant_id, AMAZON, amazon_data(), cas=0)
    remove(vault_server.admin(), secret_path(tenant_id, AMAZON))
    reconnected = amazon_data()

    found = await vault_store.read(tenant_id, AMAZON)
    exists = await vault_store.exists(tenant_id, AMAZON)
    version = await vault_store.write(tenant_id, AMAZON, reconnected, cas=expected.version)

    assert found == expected
    assert exists is False
    assert await vault_store.read(tenant_id, AMAZON) == Stored(reconnected, version)


async def test_delete_destroys_every_version_so_no_old_token_stays_readable(
    vault_server: VaultServer, vault_store: VaultSecretStore, tenant_id: TenantId
) -> None:
    await vault_store.write(tenant_id, AMAZON, amazon_data(), cas=0)
    await vault_store.write(tenant_id, AMAZON, amazon_data(), cas=1)

    assert await vault_store.delete(tenant_id, AMAZON) is True
    assert await vault_store.delete(tenant_id, AMAZON) is False

    kv = vault_server.admin().secrets.kv.v2
    path = secret_path(tenant_id, AMAZON)
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_version(path=path, version=1, raise_on_deleted_version=True)
    versions = kv.read_secret_metadata(path=path)["data"]["versions"]
    assert {number: info["destroyed"] for number, info in versions.items()} == {
        "1": True,
        "2": True,
    }
    assert await vault_store.read(tenant_id, AMAZON) == MissingSecret(Absence.DESTROYED, 2)
    assert await vault_store.exists(tenant_id, AMAZON) is False
    assert await vault_store.delete(TenantId("t-never-written"), AMAZON) is False


async def test_approle_with_the_documented_policy_reads_writes_and_deletes(
    vault_server: VaultServer, approle: AppRoleCredentials, tenant_id: TenantId
) -> None:
    store = approle_store(vault_server, approle)
    data = amazon_data()
    try:
        assert await store.write(tenant_id, AMAZON, data, cas=0) == 1
        assert await store.read(tenant_id, AMAZON) == Stored(data, 1)
        assert await store.exists(tenant_id, AMAZON)
        assert await store.delete(tenant_id, AMAZON)
        assert await store.read(tenant_id, AMAZON) == MissingSecret(Absence.DESTROYED, 1)
    finally:
        await store.aclose()
    assert store.logins == 1


async def test_approle_logs_in_again_once_when_its_token_is_revoked(
    vault_server: VaultServer, approle: AppRoleCredentials, tenant_id: TenantId
) -> None:
    store = approle_store(vault_server, approle)
    data = amazon_data()
    try:
        await store.write(tenant_id, AMAZON, data, cas=0)
        revoke_approle_tokens(vault_server.admin())

        found = await store.read(tenant_id, AMAZON)
    finally:
        await store.aclose()

    assert found == Stored(data, 1)
    assert store.logins == 2


async def test_approle_cannot_read_outside_its_prefix(
    vault_server: VaultServer, approle: AppRoleCredentials, tenant_id: TenantId
) -> None:
    admin = vault_server.admin()
    admin.secrets.kv.v2.create_or_update_secret(path="payments/stripe", secret={"key": "sk"})
    if "other-kv/" not in admin.sys.list_mounted_secrets_engines()["data"]:
        admin.sys.enable_secrets_engine("kv", path="other-kv", options={"version": "2"})
    app_client = hvac.Client(url=vault_server.addr, timeout=5)
    app_client.auth.approle.login(role_id=approle.role_id, secret_id=approle.secret_id)
    misconfigured = VaultSecretStore(
        addr=vault_server.addr,
        mount="other-kv",
        approle=(approle.role_id, approle.secret_id),
    )

    with pytest.raises(hvac.exceptions.Forbidden):
        app_client.secrets.kv.v2.read_secret_version(
            path="payments/stripe", raise_on_deleted_version=True
        )
    with pytest.raises(hvac.exceptions.Forbidden):
        app_client.secrets.kv.v2.delete_metadata_and_all_versions(
            path=secret_path(tenant_id, AMAZON)
        )
    try:
        with pytest.raises(SecretAccessDenied) as denied:
            await misconfigured.read(tenant_id, AMAZON)
    finally:
        await misconfigured.aclose()

    assert misconfigured.logins == 2  # the first login, then one more after the 403
    assert denied.value.code == "secret_store_access_denied"
    assert "policy does not allow" in str(denied.value)


async def test_a_refused_approle_login_is_a_typed_error(
    vault_server: VaultServer, approle: AppRoleCredentials, tenant_id: TenantId
) -> None:
    store = VaultSecretStore(addr=vault_server.addr, approle=(approle.role_id, "not-the-secret-id"))
    try:
        with pytest.raises(SecretAccessDenied) as denied:
            await store.exists(tenant_id, AMAZON)
    finally:
        await store.aclose()

    assert "AppRole login was refused" in str(denied.value)
    assert "not-the-secret-id" not in str(denied.value)


async def test_a_sealed_vault_is_a_retryable_503_and_serves_again_once_unsealed(
    vault_server: VaultServer, vault_store: VaultSecretStore, tenant_id: TenantId
) -> None:
    data = amazon_data()
    await vault_store.write(tenant_id, AMAZON, data, cas=0)
    admin = vault_server.admin()
    admin.sys.seal()
    try:
        failures = []
        for attempt in (
            vault_store.read(tenant_id, AMAZON),
            vault_store.write(tenant_id, AMAZON, amazon_data(), cas=1),
            vault_store.exists(tenant_id, AMAZON),
            vault_store.delete(tenant_id, AMAZON),
        ):
            with pytest.raises(SecretStoreUnavailable) as unavailable:
                await attempt
            failures.append(unavailable.value)
    finally:
        admin.sys.submit_unseal_key(vault_server.unseal_key)

    assert {(f.status, f.code) for f in failures} == {(503, "secret_store_unavailable")}
    assert failures[0].headers == {"Retry-After": "5"}
    assert "(sealed)" in str(failures[0])
    assert await vault_store.read(tenant_id, AMAZON) == Stored(data, 1)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_an_unreachable_vault_is_unavailable_not_a_crash(
    tenant_id: TenantId, caplog: pytest.LogCaptureFixture
) -> None:
    port = _closed_port()
    store = VaultSecretStore(addr=f"http://127.0.0.1:{port}", token="t", timeout=1)
    try:
        with pytest.raises(SecretStoreUnavailable, match="unreachable") as unavailable:
            await store.read(tenant_id, AMAZON)
    finally:
        await store.aclose()

    problem = unavailable.value.to_problem("/api/v1/orders/backfill")
    assert f"{port}" not in problem.model_dump_json()  # the client is not told where Vault runs
    assert f"127.0.0.1:{port}" in caplog.text  # the operator is


async def test_a_vault_that_never_answers_times_out_as_unavailable(tenant_id: TenantId) -> None:
    """The store gives up by its own timeout: the call ends (rather than hangs) as unavailable.

    How soon is not measured here (a shared CI machine makes any bound flaky): without the
    store's timeout this test would hang until pytest-timeout fails it.
    """
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        store = VaultSecretStore(addr=f"http://127.0.0.1:{port}", token="t", timeout=0.3)
        try:
            with pytest.raises(SecretStoreUnavailable, match=r"timed out|no answer"):
                await store.read(tenant_id, AMAZON)
        finally:
            await store.aclose()


async def test_the_vault_backend_is_chosen_and_checked_by_configuration(
    tmp_path: Path, vault_server: VaultServer
) -> None:
    chosen = open_secret_backend(vault_settings(tmp_path, vault_server))
    await chosen.aclose()
    assert chosen.name == "vault"

    cases = {
        "KEYBUZZ_VAULT_ADDR": {"vault_addr": None},
        "not both": {"vault_role_id": "role", "vault_secret_id": "secret"},
        "not neither": {"vault_token": None},
        "needs both KEYBUZZ_VAULT_ROLE_ID": {"vault_token": None, "vault_role_id": "role"},
    }
    for message, overrides in cases.items():
        with pytest.raises(SecretStoreMisconfigured, match=message):
            open_secret_backend(vault_settings(tmp_path, vault_server, **overrides))

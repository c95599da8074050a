"""Secrets in Vault (or OpenBao) KV v2, through hvac.

hvac is synchronous: every operation runs in this store's own thread pool (a hung Vault cannot
starve the event loop's default executor) under a deadline. Every write carries ``cas`` and
marks its key ``cas_required``; every read passes ``raise_on_deleted_version`` explicitly.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import hvac
import hvac.exceptions
import requests
from sqlalchemy.ext.asyncio import AsyncSession

from keybuzz.config import Settings
from keybuzz.secrets.store import (
    Absence,
    MissingSecret,
    SecretAccessDenied,
    SecretConflict,
    SecretData,
    SecretMalformed,
    SecretName,
    SecretStore,
    SecretStoreError,
    SecretStoreMisconfigured,
    SecretStoreUnavailable,
    Stored,
    secret_path,
)
from keybuzz.tenants.models import TenantId

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Kept versions per key: enough to recover from a bad write, few enough that old refresh tokens
# do not pile up (a disconnect destroys them all anyway).
MAX_VERSIONS = 5
MAX_CONCURRENT_CALLS = 8
CAS_MISMATCH = "check-and-set parameter did not match"
_SERVER_TROUBLE = (
    hvac.exceptions.InternalServerError,
    hvac.exceptions.BadGateway,
    hvac.exceptions.RateLimitExceeded,
    hvac.exceptions.PreconditionFailed,
    hvac.exceptions.VaultNotInitialized,
    hvac.exceptions.UnexpectedError,
)
_DENIED = (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized)


def app_policy(mount: str = "secret") -> str:
    """The Vault policy KeyBuzz needs: tenants' secrets only, with destroy for disconnects."""
    return f"""\
# KeyBuzz Orders: read and write tenants' secrets, destroy them on disconnect; nothing else.
path "{mount}/data/keybuzz/tenants/*" {{
  capabilities = ["create", "read", "update"]
}}
path "{mount}/metadata/keybuzz/tenants/*" {{
  capabilities = ["create", "read", "update", "list"]
}}
path "{mount}/destroy/keybuzz/tenants/*" {{
  capabilities = ["update"]
}}
"""


class VaultSecretStore:
    """Both the backend and the store: the session is ignored, writes are immediate."""

    name = "vault"

    def __init__(
        self,
        *,
        addr: str,
        mount: str = "secret",
        timeout: float = 5.0,
        token: str | None = None,
        approle: tuple[str, str] | None = None,
        verify: bool | str = True,
    ) -> None:
        self.addr = addr
        self.mount = mount
        self.logins = 0
        self._approle = approle
        self._client = hvac.Client(url=addr, timeout=timeout, verify=verify)
        self._client.token = token  # hvac would otherwise fall back to VAULT_TOKEN
        self._login_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(MAX_CONCURRENT_CALLS, thread_name_prefix="vault")
        # A call may log in again and retry: a few requests, each bounded by ``timeout``.
        self._deadline = timeout * 3

    @classmethod
    def from_settings(cls, settings: Settings) -> VaultSecretStore:
        if not settings.vault_addr:
            raise SecretStoreMisconfigured(
                "KEYBUZZ_SECRETS_BACKEND=vault needs KEYBUZZ_VAULT_ADDR (e.g. https://vault:8200)."
            )
        role_id, secret_id = settings.vault_role_id, settings.vault_secret_id
        if (role_id is None) != (secret_id is None):
            raise SecretStoreMisconfigured(
                "AppRole login needs both KEYBUZZ_VAULT_ROLE_ID and KEYBUZZ_VAULT_SECRET_ID."
            )
        approle = None
        if role_id is not None and secret_id is not None:
            approle = (role_id.get_secret_value(), secret_id.get_secret_value())
        token = settings.vault_token.get_secret_value() if settings.vault_token else None
        if (approle is None) == (token is None):
            raise SecretStoreMisconfigured(
                "Set either KEYBUZZ_VAULT_TOKEN or KEYBUZZ_VAULT_ROLE_ID with "
                "KEYBUZZ_VAULT_SECRET_ID (AppRole), not both and not neither."
            )
        return cls(
            addr=settings.vault_addr,
            mount=settings.vault_mount,
            timeout=settings.vault_timeout,
            token=token,
            approle=approle,
            verify=str(settings.vault_ca_cert) if settings.vault_ca_cert else True,
        )

    # --- SecretBackend ------------------------------------------------------------------------

    def store(self, session: AsyncSession) -> SecretStore:
        return self

    async def describe(self, session: AsyncSession) -> list[tuple[str, str]]:
        server = await self._run(self._health, authenticated=False)
        return [
            ("backend", "vault (KV v2)"),
            ("address", self.addr),
            ("keys", f"{self.mount}/data/keybuzz/tenants/<tenant>/<name>"),
            ("auth", "AppRole" if self._approle else "token"),
            ("server", server),
        ]

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._client.adapter.close()

    # --- SecretStore --------------------------------------------------------------------------

    async def read(
        self, tenant_id: TenantId, name: SecretName
    ) -> Stored[SecretData] | MissingSecret:
        path = secret_path(tenant_id, name)
        return await self._run(lambda: self._read(path, tenant_id, name))

    async def write(
        self, tenant_id: TenantId, name: SecretName, data: SecretData, *, cas: int
    ) -> int:
        if cas < 0:
            raise ValueError("cas is a version number, 0 for a secret that must not exist yet")
        path = secret_path(tenant_id, name)
        version = await self._run(lambda: self._write(path, data, cas))
        if version is None:
            raise SecretConflict.stale(tenant_id, name, cas)
        logger.info("secret %s of tenant %s written to Vault, version %d", name, tenant_id, version)
        return version

    async def delete(self, tenant_id: TenantId, name: SecretName) -> bool:
        path = secret_path(tenant_id, name)
        destroyed = await self._run(lambda: self._destroy_all(path))
        if destroyed:
            logger.info("secret %s of tenant %s destroyed in Vault", name, tenant_id)
        return destroyed

    async def exists(self, tenant_id: TenantId, name: SecretName) -> bool:
        path = secret_path(tenant_id, name)
        return await self._run(lambda: self._exists(path))

    # --- Calls, run in the pool ---------------------------------------------------------------

    def _read(
        self, path: str, tenant_id: TenantId, name: SecretName
    ) -> Stored[SecretData] | MissingSecret:
        try:
            body = self._client.secrets.kv.v2.read_secret_version(
                path=path, mount_point=self.mount, raise_on_deleted_version=False
            )
        except hvac.exceptions.InvalidPath as missing:
            body = missing.json  # never written, metadata deleted, or latest version destroyed
        metadata = ((body or {}).get("data") or {}).get("metadata")
        if not metadata:
            return MissingSecret(Absence.NEVER_WRITTEN, version=0)
        version = int(metadata["version"])
        fields = body["data"]["data"]
        if fields is None:
            reason = Absence.DESTROYED if metadata.get("destroyed") else Absence.DELETED
            return MissingSecret(reason, version=version)
        try:
            return Stored(SecretData(fields), version)
        except (TypeError, AttributeError):
            raise SecretMalformed(
                f"Secret {name} of tenant {tenant_id} (version {version}) in Vault is not a set "
                "of text fields.",
                tenant_id=tenant_id,
                name=name,
                version=version,
            ) from None

    def _write(self, path: str, data: SecretData, cas: int) -> int | None:
        """The new version, or ``None`` when the check-and-set lost."""
        kv = self._client.secrets.kv.v2
        kv.update_metadata(
            path=path, max_versions=MAX_VERSIONS, cas_required=True, mount_point=self.mount
        )
        try:
            response = kv.create_or_update_secret(
                path=path, secret=data.reveal(), cas=cas, mount_point=self.mount
            )
        except hvac.exceptions.InvalidRequest as refused:
            errors = [str(error) for error in refused.errors or []]
            if any(CAS_MISMATCH in error for error in errors):
                return None
            logger.error("Vault at %s refused to write %s: %s", self.addr, path, errors)
            raise SecretStoreError(
                f"Vault refused to write the secret: {'; '.join(errors) or 'no reason given'}."
            ) from None
        return int(response["data"]["version"])

    def _destroy_all(self, path: str) -> bool:
        """Destroy every version still holding data (a soft delete would leave them readable)."""
        metadata = self._metadata(path)
        if metadata is None:
            return False
        holding = sorted(
            int(number) for number, info in metadata["versions"].items() if not info["destroyed"]
        )
        if holding:
            self._client.secrets.kv.v2.destroy_secret_versions(
                path=path, versions=holding, mount_point=self.mount
            )
        return bool(holding)

    def _exists(self, path: str) -> bool:
        metadata = self._metadata(path)
        if metadata is None:
            return False
        latest = metadata["versions"].get(str(metadata["current_version"]))
        return bool(latest) and not latest["destroyed"] and not latest["deletion_time"]

    def _metadata(self, path: str) -> dict[str, Any] | None:
        try:
            response = self._client.secrets.kv.v2.read_secret_metadata(
                path=path, mount_point=self.mount
            )
        except hvac.exceptions.InvalidPath:
            return None
        metadata: dict[str, Any] = response["data"]
        return metadata

    def _health(self) -> str:
        try:
            response = self._client.sys.read_health_status(method="GET")
        except requests.RequestException:
            return "unreachable"
        if isinstance(response, dict):
            return f"unsealed, version {response.get('version', '?')}"
        states = {503: "sealed", 501: "not initialized", 429: "standby"}
        return states.get(response.status_code, f"HTTP {response.status_code}")

    # --- Login, deadlines and error mapping ---------------------------------------------------

    async def _run(self, call: Callable[[], T], *, authenticated: bool = True) -> T:
        guarded = (lambda: self._as_app(call)) if authenticated else call
        future = asyncio.get_running_loop().run_in_executor(self._executor, guarded)
        try:
            return await asyncio.wait_for(future, self._deadline)
        except TimeoutError:
            raise self._unavailable(f"no answer within {self._deadline:g} s") from None

    def _as_app(self, call: Callable[[], T]) -> T:
        """Run ``call`` logged in; on 403 with AppRole, log in again once and retry."""
        try:
            token = self._token()
            try:
                return call()
            except _DENIED:
                if self._approle is None:
                    raise self._denied(
                        "the token was refused (expired, revoked or lacking policy)"
                    ) from None
                logger.warning("Vault denied access; logging in again with AppRole")
                self._login(stale_token=token)
            try:
                return call()
            except _DENIED:
                raise self._denied("the AppRole policy does not allow this path") from None
        except hvac.exceptions.VaultDown as down:
            raise self._unavailable("sealed") from down
        except requests.Timeout as slow:
            raise self._unavailable("timed out") from slow
        except requests.RequestException as unreachable:
            raise self._unavailable("unreachable") from unreachable
        except _SERVER_TROUBLE as trouble:
            raise self._unavailable(f"server error {type(trouble).__name__}") from trouble
        except hvac.exceptions.VaultError as other:
            logger.error("Vault at %s refused the request: %s", self.addr, type(other).__name__)
            raise SecretStoreError(f"Vault refused the request ({type(other).__name__}).") from None

    def _token(self) -> str | None:
        token: str | None = self._client.token
        if token is None and self._approle is not None:
            self._login(stale_token=None)
            token = self._client.token
        return token

    def _login(self, *, stale_token: str | None) -> None:
        assert self._approle is not None
        with self._login_lock:
            if self._client.token is not None and self._client.token != stale_token:
                return  # another thread already logged in again
            role_id, secret_id = self._approle
            try:
                self._client.auth.approle.login(role_id=role_id, secret_id=secret_id)
            except (hvac.exceptions.InvalidRequest, *_DENIED):
                raise self._denied(
                    "the AppRole login was refused: check KEYBUZZ_VAULT_ROLE_ID and "
                    "KEYBUZZ_VAULT_SECRET_ID (a secret id can expire or run out of uses)"
                ) from None
            self.logins += 1
            logger.info("logged in to Vault at %s with AppRole (login %d)", self.addr, self.logins)

    def _unavailable(self, reason: str) -> SecretStoreUnavailable:
        logger.warning("Vault at %s unavailable: %s", self.addr, reason)
        # The answer names no address: where Vault runs is the operator's to know (the log).
        return SecretStoreUnavailable(f"Vault is unavailable ({reason}); retry in a few seconds.")

    def _denied(self, reason: str) -> SecretAccessDenied:
        logger.error("Vault at %s denied access: %s", self.addr, reason)
        return SecretAccessDenied(f"Vault denied access: {reason}.")

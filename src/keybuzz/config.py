"""Configuration from the environment (prefix ``KEYBUZZ_``) and an optional ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MASK = "********"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="KEYBUZZ_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    database_url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL URL; without it an embedded PostgreSQL server is started. "
        "With KEYBUZZ_ADMIN_DATABASE_URL, the app role's (keybuzz_app); alone, the owner's, "
        "and the app connects as keybuzz_app on the same server without a password.",
    )
    admin_database_url: SecretStr | None = Field(
        default=None,
        description="The owner role's URL (owns the tables, runs migrations, the privileged "
        "path: cross-tenant jobs and operator commands); see docs/database-roles.md.",
    )
    data_dir: Path = Field(default=Path(".keybuzz"), description="Local state folder.")
    pgdata: Path | None = Field(
        default=None, description="Embedded PostgreSQL data folder (default: <data_dir>/pgdata)."
    )
    embedded_database_name: str = "keybuzz"
    db_pool_size: int = Field(default=10, ge=1, le=200)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Where sellers' browsers reach this service (OAuth callback, pages).",
    )
    oauth_redirect_uri: str | None = Field(
        default=None,
        description="The redirect URI registered with Amazon; default: "
        "<public_url>/api/v1/marketplaces/amazon/oauth/callback.",
    )
    public_docs: bool = Field(
        default=True,
        description="Serve /docs, /redoc and /openapi.json; turn off in production if the API "
        "is not to describe itself to anyone who asks.",
    )
    session_hours: float = Field(
        default=12,
        gt=0,
        le=24 * 30,
        description="How long a sign-in to the Orders page lasts (its session cookie).",
    )
    max_body_bytes: int = Field(
        default=1_048_576,
        ge=1,
        description="Largest request body accepted, in bytes; a larger one is refused with 413 "
        "before it is read.",
    )
    rate_limit_enabled: bool = Field(
        default=True, description="Limit each API key's and each tenant's requests (429)."
    )
    rate_limit_key_per_second: float = Field(
        default=10, gt=0, description="Requests per second of one API key (or browser session)."
    )
    rate_limit_key_burst: int = Field(
        default=40, ge=1, description="Requests one API key (or browser session) may send at once."
    )
    rate_limit_tenant_per_second: float = Field(
        default=30, gt=0, description="Requests per second of one tenant, all its keys together."
    )
    rate_limit_tenant_burst: int = Field(
        default=100, ge=1, description="Requests one tenant may send at once."
    )
    rate_limit_max_delay_seconds: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description="A request over its limit whose token comes due within this many seconds "
        "waits for it and is served; one that would wait longer is answered 429 after this "
        "long (so a client that ignores Retry-After cannot spin). 0: refuse at once.",
    )
    rate_limit_anonymous_per_second: float = Field(
        default=1,
        gt=0,
        description="Refused authentications per second of one client address (counted in "
        "each process, not shared).",
    )
    rate_limit_anonymous_burst: int = Field(
        default=20,
        ge=1,
        description="Refused authentications one client address may cause at once.",
    )
    run_worker: bool = Field(
        default=False, description="`keybuzz serve` also runs a job worker in its process."
    )
    worker_concurrency: int = Field(
        default=16, ge=1, le=200, description="Jobs a worker process runs at the same time."
    )
    worker_heartbeat_seconds: float = Field(
        default=5.0,
        ge=0.2,
        le=300,
        description="How often a worker says it is alive; one silent for three of these is "
        "taken for dead and its jobs run again elsewhere.",
    )
    sync_interval_seconds: int = Field(
        default=600, ge=1, description="Seconds between incremental syncs of a connection."
    )
    sync_catch_up_after_seconds: int = Field(
        default=6 * 3600,
        ge=60,
        description="A sync this far behind catches up through the by-last-update order "
        "report before paging the rest.",
    )

    secrets_backend: Literal["local", "vault"] = Field(
        default="local",
        description="Where tenant secrets live: encrypted in PostgreSQL (local) or Vault KV v2.",
    )
    secrets_key: SecretStr | None = Field(
        default=None,
        description="Local store key, 32 bytes url-safe base64 (default: the key file).",
    )
    secrets_previous_key: SecretStr | None = Field(
        default=None,
        description="The key KEYBUZZ_SECRETS_KEY replaces, only while `secrets rotate-key` runs.",
    )
    secrets_key_file: Path | None = Field(
        default=None,
        description="Local store key file (default: <data_dir>/secrets.key), created mode 0600.",
    )
    vault_addr: str | None = Field(
        default=None, description="Vault address, e.g. https://vault:8200."
    )
    vault_token: SecretStr | None = Field(default=None, description="Vault token (or use AppRole).")
    vault_role_id: SecretStr | None = None
    vault_secret_id: SecretStr | None = None
    vault_mount: str = Field(default="secret", description="Mount path of the KV v2 engine.")
    vault_timeout: float = Field(default=5.0, gt=0, le=60, description="Seconds per Vault request.")
    vault_ca_cert: Path | None = Field(default=None, description="CA bundle for Vault's TLS.")

    # Amazon SP-API. The three URLs replace Amazon's regional defaults for every region (e.g. the
    # simulator); the app identity defaults are the simulator's, production must set its own.
    spapi_endpoint: str | None = Field(
        default=None, description="SP-API base URL for every region (default: Amazon's hosts)."
    )
    lwa_token_url: str | None = Field(
        default=None, description="LWA token URL (default: https://api.amazon.com/auth/o2/token)."
    )
    seller_central_url: str | None = Field(
        default=None, description="Seller Central URL for consent (default: the region's)."
    )
    spapi_sandbox: bool = Field(default=False, description="Use Amazon's sandbox SP-API hosts.")
    lwa_client_id: str = Field(
        default="amzn1.application-oa2-client.keybuzzsim", description="LWA client id of the app."
    )
    lwa_client_secret: SecretStr = Field(
        default=SecretStr("amzn1.oa2-cs.v1.keybuzz-simulator-secret"),
        description="LWA client secret of the app (rotate every 180 days).",
    )
    spapi_application_id: str = Field(
        default="amzn1.sp.solution.5f0c7d2e-3a41-4b8e-9c6d-7e2b1a0f4c93",
        description="SP-API application id, used in consent URLs.",
    )
    spapi_app_draft: bool = Field(
        default=False, description="The app is in Draft: consent URLs carry version=beta."
    )
    spapi_timeout_seconds: float = Field(
        default=30.0, gt=0, le=300, description="Seconds per SP-API or LWA request."
    )

    @field_validator("database_url", "admin_database_url", mode="before")
    @classmethod
    def _empty_url_is_none(cls, value: Any) -> Any:
        return None if value in ("", None) else value

    @field_validator(
        "secrets_key",
        "secrets_previous_key",
        "secrets_key_file",
        "vault_addr",
        "vault_token",
        "vault_role_id",
        "vault_secret_id",
        "vault_ca_cert",
        mode="before",
    )
    @classmethod
    def _empty_secret_setting_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("spapi_endpoint", "lwa_token_url", "seller_central_url", mode="before")
    @classmethod
    def _empty_amazon_url_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @property
    def embedded_pgdata(self) -> Path:
        return self.pgdata if self.pgdata is not None else self.data_dir / "pgdata"

    def masked(self) -> dict[str, Any]:
        """The effective configuration, every secret replaced by a mask."""
        shown: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                shown[name] = MASK if value.get_secret_value() else ""
            elif name.endswith("_url") and isinstance(value, str):
                shown[name] = mask_url_password(value)
            else:
                shown[name] = value
        for name in ("database_url", "admin_database_url"):
            url = getattr(self, name)
            if url is not None:
                shown[name] = mask_url_password(url.get_secret_value())
        return shown


def mask_url_password(url: str) -> str:
    """``postgresql://user:pw@host/db`` -> ``postgresql://user:********@host/db``."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, location = rest.rpartition("@")
    user, has_password, _ = credentials.partition(":")
    if not has_password:
        return url
    return f"{scheme}://{user}:{MASK}@{location}"


class InvalidConfiguration(ValueError):
    """A ``KEYBUZZ_*`` setting has a value that cannot be used; the message names it."""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(
            f"KEYBUZZ_{'_'.join(str(part) for part in e['loc']).upper()}: {e['msg']}"
            for e in error.errors()
        )
        raise InvalidConfiguration(f"Invalid configuration: {problems}") from None

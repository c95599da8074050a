"""Simulator settings: the LWA app identity, the default seller's data, rates, reports, faults."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from keybuzz.simulator.marketplaces import MARKETPLACES

DEFAULT_CLIENT_ID = "amzn1.application-oa2-client.keybuzzsim"
DEFAULT_CLIENT_SECRET = "amzn1.oa2-cs.v1.keybuzz-simulator-secret"
DEFAULT_APPLICATION_ID = "amzn1.sp.solution.5f0c7d2e-3a41-4b8e-9c6d-7e2b1a0f4c93"
DEFAULT_SELLER_ID = "A2KBSIMSELLER1"
# KeyBuzz's own callback (keybuzz.marketplaces.oauth) on its default public URL.
DEFAULT_REDIRECT_URIS = (
    "http://127.0.0.1:8000/api/v1/marketplaces/amazon/oauth/callback",
    "http://localhost:8000/api/v1/marketplaces/amazon/oauth/callback",
)
PII_ROLES = ("DIRECT_TO_CONSUMER_SHIPPING", "TAX_INVOICING", "TAX_REMITTANCE")


class FaultSettings(BaseModel):
    """Fractions of SP-API calls that fail on purpose; draws come from ``random.Random(seed)``."""

    error_rate: float = Field(default=0.0, ge=0, le=1, description="500/503 InternalFailure.")
    slow_rate: float = Field(default=0.0, ge=0, le=1)
    slow_seconds: float = Field(default=0.0, ge=0, le=120)
    drop_rate: float = Field(default=0.0, ge=0, le=1, description="Socket closed mid-response.")
    expired_token_rate: float = Field(default=0.0, ge=0, le=1)
    malformed_json_rate: float = Field(default=0.0, ge=0, le=1)
    seed: int = 0
    operations: list[str] | None = Field(
        default=None, description="Only these operations (e.g. 'v2026.searchOrders'); all if None."
    )


class SimulatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KEYBUZZ_SIMULATOR_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535, description="0 picks a free port.")
    public_url: str | None = Field(
        default=None, description="Base URL used in report-document links; default: bound socket."
    )

    client_id: str = DEFAULT_CLIENT_ID
    client_secret: SecretStr = SecretStr(DEFAULT_CLIENT_SECRET)
    application_id: str = DEFAULT_APPLICATION_ID
    redirect_uris: list[str] = Field(default_factory=lambda: list(DEFAULT_REDIRECT_URIS))
    draft_app: bool = Field(default=False, description="Consent then requires version=beta.")
    pii_roles: list[str] = Field(default_factory=lambda: list(PII_ROLES))

    seller_id: str = DEFAULT_SELLER_ID
    store_name: str = "KeyBuzz Demo Store"
    orders: int = Field(default=200, ge=0, le=1_000_000)
    days: int = Field(default=90, ge=1, le=730)
    seed: int = 42
    marketplaces: list[str] = Field(default_factory=lambda: ["A13V1IB3VIYZZH"])
    live_orders_per_hour: float = Field(default=0.0, ge=0, le=10_000)
    consent_refuses: bool = Field(default=False, description="The signed-in seller says no.")

    rate_scale: float = Field(default=1.0, gt=0)
    report_generation_seconds: float = Field(default=30.0, ge=0)
    order_items_page_size: int = Field(default=100, ge=1, le=100)
    faults: FaultSettings = Field(default_factory=FaultSettings)

    @field_validator("marketplaces")
    @classmethod
    def _known_marketplaces(cls, value: list[str]) -> list[str]:
        unknown = [m for m in value if m not in MARKETPLACES]
        if unknown or not value:
            raise ValueError(f"unknown or missing marketplace ids: {unknown}")
        return value

    @field_validator("pii_roles")
    @classmethod
    def _known_roles(cls, value: list[str]) -> list[str]:
        unknown = [role for role in value if role not in PII_ROLES]
        if unknown:
            raise ValueError(f"unknown roles {unknown}; known: {PII_ROLES}")
        return value

"""What the Amazon client needs to know of KeyBuzz's SP-API application, and nothing else."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import SecretStr


@dataclass(frozen=True, slots=True, kw_only=True)
class SpApiConfig:
    lwa_client_id: str
    lwa_client_secret: SecretStr
    application_id: str
    """Names the app in consent URLs."""
    app_draft: bool = False
    """The app is in Draft: consent URLs carry ``version=beta``."""
    sandbox: bool = False
    """Amazon's sandbox hosts, and one shared rate-limit bucket."""
    spapi_endpoint: str | None = None
    """Replaces every region's SP-API host (the simulator)."""
    lwa_token_url: str | None = None
    seller_central_url: str | None = None
    """Replaces every region's and marketplace's Seller Central (consent pages)."""
    timeout_seconds: float = 30.0
    """Per SP-API or LWA request."""

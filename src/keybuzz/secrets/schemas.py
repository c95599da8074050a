"""The shape of each named secret, with its sensitive fields wrapped so they never print."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SecretStr, ValidationError

from keybuzz.secrets.store import SecretData, SecretMalformed, SecretName, Stored
from keybuzz.tenants.models import TenantId


class AmazonSpapiSecret(BaseModel):
    """A tenant's SP-API authorization; ``refresh_token`` lives only in the secret store."""

    model_config = ConfigDict(frozen=True)

    refresh_token: SecretStr = Field(min_length=1, max_length=4096)
    selling_partner_id: str = Field(min_length=1, max_length=64)
    region: str = Field(min_length=1, max_length=8, description="SP-API region, e.g. eu.")
    authorized_at: AwareDatetime

    def to_data(self) -> SecretData:
        return SecretData(
            {
                "refresh_token": self.refresh_token.get_secret_value(),
                "selling_partner_id": self.selling_partner_id,
                "region": self.region,
                "authorized_at": self.authorized_at.isoformat(),
            }
        )

    @classmethod
    def from_stored(
        cls, stored: Stored[SecretData], *, tenant_id: TenantId
    ) -> Stored[AmazonSpapiSecret]:
        try:
            secret = cls.model_validate(stored.value.reveal())
        except ValidationError as invalid:
            # Pydantic's message quotes the input, secret included: name the fields only.
            fields = sorted({str(error["loc"][0]) for error in invalid.errors() if error["loc"]})
            raise SecretMalformed(
                f"Secret {SecretName.AMAZON_SPAPI} of tenant {tenant_id} "
                f"(version {stored.version}) has missing or invalid fields: {', '.join(fields)}.",
                tenant_id=tenant_id,
                name=SecretName.AMAZON_SPAPI,
                version=stored.version,
            ) from None
        return Stored(secret, stored.version)

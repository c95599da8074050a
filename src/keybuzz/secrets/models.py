from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from keybuzz.db import Base, TimestampMixin


class TenantSecret(TimestampMixin, Base):
    """A tenant's secret in the local store: AES-GCM ciphertext, never the value in clear.

    A deleted secret keeps its row (no key, nonce or ciphertext) so that, as in Vault, reads can
    tell "deleted" from "never written" and the next write must name the current version.
    """

    __tablename__ = "tenant_secrets"
    __table_args__ = (
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint(
            "(ciphertext IS NULL) = (nonce IS NULL) AND (ciphertext IS NULL) = (key_id IS NULL) "
            "AND (ciphertext IS NULL) = (deleted_at IS NOT NULL)",
            name="sealed_or_deleted",
        ),
    )

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int]
    key_id: Mapped[str | None] = mapped_column(String(32))
    nonce: Mapped[bytes | None] = mapped_column(LargeBinary)
    ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    deleted_at: Mapped[dt.datetime | None]

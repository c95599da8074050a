from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, func, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from keybuzz.db import UUID7_DEFAULT, Base, TimestampMixin, pg_enum


class ConnectionStatus(enum.StrEnum):
    PENDING = "PENDING"
    CONNECTED = "CONNECTED"
    NEEDS_RECONNECT = "NEEDS_RECONNECT"
    ERROR = "ERROR"
    DISCONNECTED = "DISCONNECTED"


class MarketplaceConnection(TimestampMixin, Base):
    """A tenant's link to one marketplace account. Its secret lives in the secret store only."""

    __tablename__ = "marketplace_connections"
    __table_args__ = (
        UniqueConstraint("tenant_id", "marketplace"),
        # One seller account, one tenant: of two tenants' concurrent consents of one seller,
        # one wins (the callback's lock makes it the first, this index makes it sure). A
        # disconnected or pending connection's seller id is history: it holds no seller.
        Index(
            "uq_marketplace_connections_live_seller",
            "marketplace",
            "selling_partner_id",
            unique=True,
            postgresql_where=text(
                "selling_partner_id IS NOT NULL AND status NOT IN ('DISCONNECTED', 'PENDING')"
            ),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=UUID7_DEFAULT)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    marketplace: Mapped[str] = mapped_column(String(32))
    region: Mapped[str | None] = mapped_column(String(8))
    selling_partner_id: Mapped[str | None] = mapped_column(String(64))
    marketplace_ids: Mapped[list[str]] = mapped_column(ARRAY(String(32)), default=list)
    status: Mapped[ConnectionStatus] = mapped_column(pg_enum(ConnectionStatus, "connection_status"))
    status_reason: Mapped[str | None] = mapped_column(Text)
    connected_at: Mapped[dt.datetime | None]
    last_checked_at: Mapped[dt.datetime | None]
    last_sync_at: Mapped[dt.datetime | None]
    synced_through: Mapped[dt.datetime | None] = mapped_column(
        comment="Incremental sync watermark: every change Amazon made before it is stored."
    )
    next_sync_at: Mapped[dt.datetime | None]
    sync_position: Mapped[dict[str, Any] | None] = mapped_column(
        JSONB, comment="Where an unfinished incremental sync resumes."
    )
    quota_state: Mapped[dict[str, Any] | None] = mapped_column(
        JSONB, comment="The seller's rate-limit buckets, as the last job left them."
    )


class OAuthState(Base):
    """One consent attempt: its ``state`` (stored hashed), bound to a tenant, single use."""

    __tablename__ = "oauth_states"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=UUID7_DEFAULT)
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    binding_hash: Mapped[str] = mapped_column(
        String(64), comment="Hash of the cookie given to the browser that started the consent."
    )
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    marketplace: Mapped[str] = mapped_column(String(32))
    region: Mapped[str] = mapped_column(String(8))
    return_path: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]

from __future__ import annotations

import datetime as dt
import uuid
from typing import NewType

from sqlalchemy import CheckConstraint, ForeignKey, String, func
from sqlalchemy.orm import Mapped, mapped_column

from keybuzz.db import UUID7_DEFAULT, Base, TimestampMixin

TenantId = NewType("TenantId", str)
"""A tenant id that was authenticated or explicitly chosen by an operator.

Only the auth dependency and operator entry points (CLI, jobs) create one; every repository
function on tenant data requires it.
"""

TENANT_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{1,63}$"


class Tenant(TimestampMixin, Base):
    __tablename__ = "tenants"
    __table_args__ = (CheckConstraint(f"id ~ '{TENANT_ID_PATTERN}'", name="id_format"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=UUID7_DEFAULT)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    revoked_at: Mapped[dt.datetime | None]


class BrowserSession(Base):
    """An agent's browser signed in with an API key: the Orders page's cookie, stored hashed.

    It lasts as long as the key it was opened with: revoking the tenant's keys ends it.
    """

    __tablename__ = "browser_sessions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=UUID7_DEFAULT)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    api_key_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[dt.datetime]

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

from __future__ import annotations

from keybuzz.schemas import Schema, UtcDateTime


class TenantRead(Schema):
    id: str
    name: str
    created_at: UtcDateTime
    active_keys: int


class CreatedTenant(Schema):
    tenant: TenantRead
    api_key: str

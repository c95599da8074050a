from __future__ import annotations

import uuid

from pydantic import ConfigDict, Field

from keybuzz.schemas import Schema, UtcDateTime
from keybuzz.sync.models import BackfillStatus


class BackfillRequest(Schema):
    model_config = ConfigDict(extra="forbid")

    days: int = Field(default=90, ge=1, le=730, description="How many days back to import.")
    marketplace: str = Field(default="amazon", pattern="^amazon$")


class BackfillJobRead(Schema):
    id: uuid.UUID
    marketplace: str
    status: BackfillStatus
    days: int
    window_start: UtcDateTime
    window_end: UtcDateTime
    orders_fetched: int
    error_code: str | None
    error_message: str | None
    created_at: UtcDateTime
    started_at: UtcDateTime | None
    finished_at: UtcDateTime | None


class BackfillJobList(Schema):
    items: list[BackfillJobRead]

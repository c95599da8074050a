from __future__ import annotations

import datetime as dt
import math
import uuid

from pydantic import ConfigDict, Field

from keybuzz.errors import Problem
from keybuzz.schemas import Schema, UtcDateTime
from keybuzz.sync.models import BackfillJob, BackfillPhase, BackfillStatus


class BackfillRequest(Schema):
    model_config = ConfigDict(extra="forbid")

    days: int = Field(default=90, ge=1, le=730, description="How many days back to import.")
    marketplace: str = Field(default="amazon", pattern="^amazon$")
    purge: bool = Field(
        default=False,
        description="First delete the tenant's orders of this marketplace (in one transaction "
        "with nothing else), then import.",
    )


class BackfillJobRead(Schema):
    id: uuid.UUID
    marketplace: str
    status: BackfillStatus
    phase: BackfillPhase = Field(
        description="`COVERAGE`: every order of the window from order reports; `ENRICHMENT`: "
        "buyer, recipient, totals, deadlines, newest first; `DONE`."
    )
    days: int
    purge: bool
    window_start: UtcDateTime
    window_end: UtcDateTime
    orders_stored: int = Field(description="Orders of the window stored so far.")
    orders_fetched: int = Field(description="Same as `ordersStored` (first API version's name).")
    items_stored: int
    orders_enriched: int = Field(description="Orders whose details the APIs have brought.")
    quarantined: int = Field(
        description="Orders Amazon sent that could not be stored: see "
        "`GET /api/v1/orders/quarantine`."
    )
    progress: float = Field(ge=0, le=1)
    eta_seconds: int | None = Field(
        description="Seconds until done, from the seller's rate limits and what is left; null "
        "while Amazon prepares the reports, and once the job is over."
    )
    last_error: Problem | None = Field(description="Why the job failed, as problem details.")
    error_code: str | None
    error_message: str | None
    created_at: UtcDateTime
    started_at: UtcDateTime | None
    finished_at: UtcDateTime | None

    @classmethod
    def of(cls, job: BackfillJob, now: dt.datetime | None = None) -> BackfillJobRead:
        now = now or dt.datetime.now(dt.UTC)
        over = job.status not in (BackfillStatus.QUEUED, BackfillStatus.RUNNING)
        eta = None
        if not over and job.estimated_done_at is not None:
            eta = max(0, math.ceil((job.estimated_done_at - now).total_seconds()))
        return cls(
            id=job.id,
            marketplace=job.marketplace,
            status=job.status,
            phase=job.phase,
            days=job.days,
            purge=job.purge,
            window_start=job.window_start,
            window_end=job.window_end,
            orders_stored=job.orders_stored,
            orders_fetched=job.orders_stored,
            items_stored=job.items_stored,
            orders_enriched=job.orders_enriched,
            quarantined=job.quarantined,
            progress=1.0 if job.status is BackfillStatus.SUCCEEDED else job.progress,
            eta_seconds=eta,
            last_error=Problem.model_validate(job.last_error) if job.last_error else None,
            error_code=job.error_code,
            error_message=job.error_message,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
        )


class BackfillJobList(Schema):
    items: list[BackfillJobRead]

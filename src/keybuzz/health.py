"""Liveness (the process answers) and readiness (the database answers)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from sqlalchemy import text

from keybuzz.deps import RuntimeDep
from keybuzz.errors import DatabaseUnavailable
from keybuzz.problems import problem_responses
from keybuzz.schemas import Schema

router = APIRouter(tags=["health"])
READINESS_TIMEOUT_SECONDS = 2.0


class HealthStatus(Schema):
    status: str


@router.get("/healthz", response_model=HealthStatus)
async def healthz() -> HealthStatus:
    return HealthStatus(status="ok")


@router.get(
    "/readyz", response_model=HealthStatus, responses=problem_responses(DatabaseUnavailable)
)
async def readyz(runtime: RuntimeDep) -> HealthStatus:
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_SECONDS):
            async with runtime.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    except Exception as exc:
        raise DatabaseUnavailable("The database does not answer.") from exc
    return HealthStatus(status="ready")

"""The one statement that takes tokens from a shared bucket (table ``rate_limit_buckets``)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

# The bucket as it stands now: what it held, plus what the rate has added since it was last
# touched (the server's clock, so that every process and machine reads the same time), at most
# the burst. A new bucket starts full.
_REFILLED = (
    "least(:burst, b.tokens + :rate * greatest(0, "
    "extract(epoch FROM statement_timestamp() - b.updated_at)))"
)
_GRANTED = f"least(:want, floor({_REFILLED}))"

# One atomic statement: the row lock of the upsert serialises the takers of one bucket, and
# nothing is held after it (each runs on its own in autocommit).
TAKE_TOKENS = text(
    f"""
    INSERT INTO rate_limit_buckets AS b (bucket_key, tokens, granted, updated_at)
    VALUES (:key, :burst - least(:want, :burst), least(:want, :burst), statement_timestamp())
    ON CONFLICT (bucket_key) DO UPDATE SET
        granted = CAST({_GRANTED} AS integer),
        tokens = {_REFILLED} - {_GRANTED},
        -- a statement that waited for the row lock started before the one it waited for
        updated_at = greatest(b.updated_at, statement_timestamp())
    RETURNING granted, tokens
    """
)


@dataclass(frozen=True)
class Grant:
    granted: int
    """Tokens taken for the caller (0: the bucket held less than one)."""
    left: float
    """What the bucket holds after the take."""


async def take_tokens(
    engine: AsyncEngine, key: str, *, want: int, per_second: float, burst: int
) -> Grant:
    """Take up to ``want`` whole tokens from bucket ``key``, refilled first; one round trip."""
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                TAKE_TOKENS, {"key": key, "want": want, "rate": per_second, "burst": burst}
            )
        ).one()
    return Grant(granted=int(row.granted), left=float(row.tokens))

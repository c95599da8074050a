"""The one statement that takes tokens from a shared bucket (table ``rate_limit_buckets``)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

# The bucket as it stands now: what it held, plus what the rate has added since it was last
# touched (the server's clock, so that every process and machine reads the same time), at most
# the burst. A new bucket starts full. A bucket may be in debt (below 0) by up to ``:debt``
# tokens: tokens taken ahead of their time, by requests that wait until they come due.
_REFILLED = (
    "least(:burst, b.tokens + :rate * greatest(0, "
    "extract(epoch FROM statement_timestamp() - b.updated_at)))"
)
_GRANTED = f"least(:want, greatest(0, floor({_REFILLED} + :debt)))"

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
    """Tokens taken for the caller (0: the bucket held less than one, debt allowed included)."""
    left: float
    """What the bucket holds after the take; below 0 when tokens were taken ahead of time: the
    last one comes due once the rate has refilled that much."""


async def take_tokens(
    engine: AsyncEngine,
    key: str,
    *,
    want: int,
    per_second: float,
    burst: int,
    debt: float = 0.0,
) -> Grant:
    """Take up to ``want`` whole tokens from bucket ``key``, refilled first, going at most
    ``debt`` tokens below empty; one round trip."""
    params = {"key": key, "want": want, "rate": per_second, "burst": burst, "debt": debt}
    async with engine.connect() as connection:
        row = (await connection.execute(TAKE_TOKENS, params)).one()
    return Grant(granted=int(row.granted), left=float(row.tokens))

"""Two ways the client runs calls side by side: a generator read ahead by a background task, and
a batch of calls that succeed together or are cancelled together (no stray requests)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Sequence
from typing import TypeVar

T = TypeVar("T")


async def ahead(source: AsyncGenerator[T, None], depth: int) -> AsyncIterator[T]:
    """``source`` iterated by a background task, at most ``depth`` items ahead of the reader."""
    # A 1-tuple is an item, an exception the source's failure, None its end.
    queue: asyncio.Queue[tuple[T] | BaseException | None] = asyncio.Queue(depth)

    async def pump() -> None:
        try:
            async for item in source:
                await queue.put((item,))
        except Exception as error:
            await queue.put(error)
        else:
            await queue.put(None)

    task = asyncio.create_task(pump())
    try:
        while (entry := await queue.get()) is not None:
            if isinstance(entry, BaseException):
                raise entry
            yield entry[0]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await source.aclose()


async def gather_or_cancel(calls: Sequence[Awaitable[T]]) -> list[T]:
    """All results, or the first failure with the other calls cancelled (no stray requests)."""
    tasks = [asyncio.ensure_future(call) for call in calls]
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise

"""Backoff with full jitter, shared by every retry loop in the runtime."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


def full_jitter(attempt: int, base_s: float, cap_s: float) -> float:
    """A random delay in [0, min(cap, base * 2^(attempt-1))].

    Full jitter spreads out the retries of replicas that failed at the same moment.
    """
    return random.uniform(0, min(cap_s, base_s * 2 ** max(0, attempt - 1)))


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    """Sleeps, but returns at once when ``stop`` is set (shutdown must not wait for a backoff)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def unless_stopped(stop: asyncio.Event, work: Awaitable[T]) -> T | None:
    """``work``'s result, or None once ``stop`` is set first (``work`` is then cancelled)."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    return None if task.cancelled() else task.result()

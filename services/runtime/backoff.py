"""Backoff with full jitter, shared by every retry loop in the runtime."""

from __future__ import annotations

import asyncio
import contextlib
import random


def full_jitter(attempt: int, base_s: float, cap_s: float) -> float:
    """A random delay in [0, min(cap, base * 2^(attempt-1))].

    Full jitter spreads out the retries of replicas that failed at the same moment.
    """
    return random.uniform(0, min(cap_s, base_s * 2 ** max(0, attempt - 1)))


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    """Sleeps, but returns at once when ``stop`` is set (shutdown must not wait for a backoff)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)

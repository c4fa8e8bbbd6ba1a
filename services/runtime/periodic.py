"""A background loop that keeps metrics current from a slow source (the broker, the database)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from services.runtime.backoff import sleep_or_stop, unless_stopped

log = logging.getLogger(__name__)

T = TypeVar("T")
S = TypeVar("S")


async def refresh_every(
    interval_s: float,
    stop: asyncio.Event,
    read: Callable[[], Awaitable[T]],
    apply: Callable[[T, S], S],
    state: S,
    *,
    what: str,
    read_timeout_s: float | None = None,
) -> None:
    """Every ``interval_s`` (0: never), ``state = apply(await read(), state)`` until ``stop``.

    A read that fails or takes longer than ``read_timeout_s`` (default: the interval, 15 s at
    least; a broker that does not answer must not hold the loop for ever) is logged and
    skipped, so what ``apply`` set last stays: a gauge keeps its last values rather than
    dropping to zero. A read in progress is
    abandoned when ``stop`` is set. ``state`` carries what ``apply`` needs from one round to
    the next (e.g. which label sets it exported, to remove those that went away). ``read``
    never returns None.
    """
    timeout_s = read_timeout_s if read_timeout_s is not None else max(interval_s, 15.0)
    while interval_s > 0 and not stop.is_set():
        try:
            async with asyncio.timeout(timeout_s):
                value = await unless_stopped(stop, read())
        except Exception:
            log.warning("%s failed; the metrics keep their last values", what, exc_info=True)
        else:
            if value is None:  # stopped while reading
                return
            state = apply(value, state)
        await sleep_or_stop(stop, interval_s)

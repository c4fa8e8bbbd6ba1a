"""Wakes long-polling requests when a run changes in this process.

Waiters also re-read the database every second, so a change projected by another gateway
replica is seen too; this only makes the common case immediate.
"""

from __future__ import annotations

import asyncio
import contextlib


class RunWatch:
    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}
        self._pending: set[str] = set()

    def changed(self, run_id: str) -> None:
        """Called inside the projecting transaction; takes effect at ``flush`` (after commit)."""
        self._pending.add(run_id)

    def flush(self) -> None:
        pending, self._pending = self._pending, set()
        for run_id in pending:
            event = self._events.pop(run_id, None)
            if event is not None:
                event.set()

    async def wait(self, run_id: str, seconds: float) -> None:
        event = self._events.setdefault(run_id, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)

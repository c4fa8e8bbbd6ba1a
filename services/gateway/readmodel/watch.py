"""Which runs a projecting transaction changed, told to listeners once it has committed.

The projection marks runs as it writes them (``changed``); the consumer calls ``flush``
after the commit, so a listener (the run cache, which wakes long-polls) never reads a
version that could still roll back.
"""

from __future__ import annotations

from collections.abc import Callable


class RunWatch:
    def __init__(self) -> None:
        self._pending: set[str] = set()
        self._listeners: list[Callable[[str], None]] = []

    def subscribe(self, listener: Callable[[str], None]) -> None:
        self._listeners.append(listener)

    def changed(self, run_id: str) -> None:
        """Called inside the projecting transaction; takes effect at ``flush`` (after commit)."""
        self._pending.add(run_id)

    def flush(self) -> None:
        pending, self._pending = self._pending, set()
        for run_id in pending:
            for listener in self._listeners:
                listener(run_id)

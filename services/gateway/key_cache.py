"""The tenants of stored API keys this replica has checked, for a few seconds.

Without it every poll of every client reads the key table; with it, a thousand pollers of
one key cost one read per ``ttl_s``. Entries are keyed by the key's hash, never the key, and
a revoked key stops working within ``ttl_s``. Failed checks are not cached: an unknown key
always reaches the table.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable


class KeyCache:
    def __init__(
        self, ttl_s: float, *, max_keys: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl_s = ttl_s
        self._max_keys = max_keys
        self._clock = clock
        self._tenants: dict[bytes, tuple[str, float]] = {}

    @staticmethod
    def _digest(key: str) -> bytes:
        return hashlib.sha256(key.encode("utf-8")).digest()

    def tenant(self, key: str) -> str | None:
        found = self._tenants.get(self._digest(key))
        if found is None:
            return None
        tenant, until = found
        if self._clock() >= until:
            del self._tenants[self._digest(key)]
            return None
        return tenant

    def remember(self, key: str, tenant: str) -> None:
        if self._ttl_s <= 0:
            return
        if len(self._tenants) >= self._max_keys:
            now = self._clock()
            self._tenants = {d: e for d, e in self._tenants.items() if e[1] > now}
            if len(self._tenants) >= self._max_keys:
                self._tenants.clear()
        self._tenants[self._digest(key)] = (tenant, self._clock() + self._ttl_s)

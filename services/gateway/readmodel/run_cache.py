"""Each gateway process's copy of the runs its clients poll, and the long-polls waiting on them.

Polling is how every client follows a run, so a thousand pollers must cost what one does:

- A run's snapshot (``RunSnapshot``: version and body from one transaction) is loaded once
  per version and shared by every request; concurrent misses share one load.
- Waiters sleep on an event per run. It is set when the run's version moves: at once when
  this process projected the change (``invalidate``, told by ``RunWatch`` after the commit),
  and within the sweep's interval when another replica did (``sweep``: one query for the
  versions of every cached run, whatever the number of waiters).
- Many waiters on one run are woken in batches, at most every ``COALESCE_S`` and at most
  ``ANSWERS_PER_S`` answers a second.
- The answer's bytes are rendered once per version, and again at most every
  ``RENDER_EVERY_S`` while its clock fields move; the elapsed time never goes back.
- Long-polls are bounded per process and per tenant: past the bound, ``Problem`` with
  ``Retry-After`` (503 ``unavailable``, 429 ``rate_limited``), never a hang.

Loading and reading versions are functions passed in, so this is tested without a database.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from services.gateway.problems import Problem, not_found
from services.gateway.readmodel import run_object
from services.gateway.readmodel.run_object import RunSnapshot
from services.runtime import metrics
from services.runtime.backoff import sleep_or_stop

log = logging.getLogger(__name__)

Load = Callable[[str, str], Awaitable[RunSnapshot]]
"""(tenant, run_id) -> the run's snapshot; raises ``not_found`` when the tenant has no such run."""
ReadVersions = Callable[[Sequence[str]], Awaitable[dict[str, int]]]
"""run ids -> their current versions (a run that is gone is left out)."""

RENDER_EVERY_S = 0.1  # the run object's clock fields are rounded to a tenth of a second
WAKE_AT_ONCE = 32
"""Waiters of one run woken in one turn of the event loop; more are woken in batches."""
COALESCE_S = 0.5
"""Beyond ``WAKE_AT_ONCE`` waiters, a run's waiters are woken at most this often..."""
ANSWERS_PER_S = 400
"""...and its changes cost at most this many answers a second (1,000 waiters: every 2.5 s).
Each answer is followed by the client's next poll; measured on 2 cores, a few hundred a second
is what leaves the event loop free for every other request (tests/perf/poll_bench.py)."""
SWEEP_BATCH = 500


@dataclass(slots=True)
class _Entry:
    snapshot: RunSnapshot
    stale: bool = False
    used_at: float = field(default_factory=time.monotonic)
    elapsed_floor: float = 0.0
    body: bytes | None = None
    rendered_at: float = 0.0


@dataclass(frozen=True, slots=True)
class Answer:
    version: int
    etag: str
    body: bytes


@dataclass(frozen=True, slots=True)
class WaitBounds:
    per_process: int
    per_tenant: int
    retry_after_s: int = 1


class RunCache:
    def __init__(
        self,
        load: Load,
        read_versions: ReadVersions,
        bounds: WaitBounds,
        *,
        max_runs: int = 2000,
        idle_s: float = 60.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._load = load
        self._read_versions = read_versions
        self._bounds = bounds
        self._max_runs = max_runs
        self._idle_s = idle_s
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._loads: dict[tuple[str, str], asyncio.Future[RunSnapshot]] = {}
        self._generation: dict[str, int] = {}
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}
        self._woken_at: dict[str, float] = {}
        self._wakes: set[asyncio.Task[None]] = set()
        self._waiting: dict[str, int] = {}
        self._waiting_total = 0

    # -- the run's current version -------------------------------------------------------

    async def current(self, tenant: str, run_id: str) -> RunSnapshot:
        entry = self._entries.get(run_id)
        if entry is not None and not entry.stale:
            if entry.snapshot.tenant_id != tenant:
                raise not_found("run", run_id)
            entry.used_at = time.monotonic()
            return entry.snapshot
        key = (tenant, run_id)
        pending = self._loads.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._load_entry(tenant, run_id))
            self._loads[key] = pending
            pending.add_done_callback(lambda done: self._loaded(key, done))
        # Shielded: one waiter hanging up must not cancel the load the others share.
        return await asyncio.shield(pending)

    def _loaded(self, key: tuple[str, str], done: asyncio.Future[RunSnapshot]) -> None:
        self._loads.pop(key, None)
        if not done.cancelled():
            done.exception()  # retrieved: every request that shared it has its own copy

    async def _load_entry(self, tenant: str, run_id: str) -> RunSnapshot:
        generation = self._generation.get(run_id, 0)
        snapshot = await self._load(tenant, run_id)
        previous = self._entries.get(run_id)
        entry = _Entry(snapshot, stale=self._generation.get(run_id, 0) != generation)
        if previous is not None and previous.snapshot.version <= snapshot.version:
            entry.elapsed_floor = previous.elapsed_floor
        elif previous is not None:
            return previous.snapshot  # an older read finishing late never replaces a newer one
        self._entries[run_id] = entry
        self._evict_beyond_max()
        return snapshot

    def answer(self, snapshot: RunSnapshot) -> Answer:
        """The response body for ``snapshot``: shared by every request within a render."""
        entry = self._entries.get(snapshot.run_id)
        if entry is None or entry.snapshot is not snapshot:
            entry = _Entry(snapshot)  # evicted meanwhile: render it for this answer alone
        fresh = time.monotonic() - entry.rendered_at < RENDER_EVERY_S
        if entry.body is None or (snapshot.clock_moves and not fresh):
            body = run_object.render(snapshot, self._clock(), elapsed_floor=entry.elapsed_floor)
            entry.elapsed_floor = body["elapsed_seconds"]
            entry.body = _json(body)
            entry.rendered_at = time.monotonic()
        return Answer(snapshot.version, run_object.etag(snapshot), entry.body)

    # -- waiting for the next version ----------------------------------------------------

    async def next_version(
        self, tenant: str, run_id: str, after: int, timeout_s: float
    ) -> RunSnapshot:
        """The run once its version is not ``after``, or as it is when ``timeout_s`` ends."""
        deadline = time.monotonic() + timeout_s
        async with self._slot(tenant):
            while True:
                snapshot = await self.current(tenant, run_id)
                remaining = deadline - time.monotonic()
                if snapshot.version != after or remaining <= 0:
                    return snapshot
                entry = self._entries.get(run_id)
                if entry is not None and entry.stale:
                    continue  # moved while it was being read: read it again
                moved = asyncio.get_running_loop().create_future()
                waiters = self._waiters.setdefault(run_id, set())
                waiters.add(moved)
                try:
                    await asyncio.wait_for(moved, remaining)
                except TimeoutError:
                    return snapshot
                finally:
                    waiters.discard(moved)

    @asynccontextmanager
    async def _slot(self, tenant: str) -> AsyncIterator[None]:
        retry = {"Retry-After": str(self._bounds.retry_after_s)}
        if self._waiting_total >= self._bounds.per_process:
            raise Problem(
                "unavailable",
                "This gateway holds as many long-polls as it allows; retry, or poll without wait.",
                status=503,
                headers=retry,
                limit=self._bounds.per_process,
            )
        if self._waiting.get(tenant, 0) >= self._bounds.per_tenant:
            raise Problem(
                "rate_limited",
                "Your tenant holds as many long-polls on this gateway as it allows.",
                headers=retry,
                limit=self._bounds.per_tenant,
            )
        self._waiting[tenant] = self._waiting.get(tenant, 0) + 1
        self._waiting_total += 1
        metrics.LONG_POLLS_WAITING.set(self._waiting_total)
        try:
            yield
        finally:
            self._waiting_total -= 1
            metrics.LONG_POLLS_WAITING.set(self._waiting_total)
            left = self._waiting[tenant] - 1
            if left:
                self._waiting[tenant] = left
            else:
                del self._waiting[tenant]

    @property
    def waiting(self) -> int:
        return self._waiting_total

    # -- what moves a version --------------------------------------------------------------

    def invalidate(self, run_id: str) -> None:
        """The run has a newer version than the one held: the next read loads it."""
        self._generation[run_id] = self._generation.get(run_id, 0) + 1
        entry = self._entries.get(run_id)
        if entry is not None:
            entry.stale = True
        waiters = self._waiters.pop(run_id, None)
        if not waiters:
            return
        if len(waiters) <= WAKE_AT_ONCE:
            _wake(waiters)
            return
        wake = asyncio.ensure_future(self._wake_gradually(run_id, list(waiters)))
        self._wakes.add(wake)
        wake.add_done_callback(self._wakes.discard)

    async def _wake_gradually(self, run_id: str, waiters: list[asyncio.Future[None]]) -> None:
        """Many waiters on one run: woken at most every ``COALESCE_S`` (longer with more
        waiters, ``ANSWERS_PER_S``), in small batches.

        A thousand answers written in one turn of the loop would hold every other request
        (a health probe, another run's poll) behind them; a run changing ten times a second
        would have a thousand clients re-poll ten times a second. Batches keep the loop
        turning; the coalescing bounds the answers a run's changes cost per second.
        """
        interval = max(COALESCE_S, len(waiters) / ANSWERS_PER_S)
        due = self._woken_at.get(run_id, 0.0) + interval - time.monotonic()
        if due > 0:
            await asyncio.sleep(due)
        self._woken_at[run_id] = time.monotonic()
        for start in range(0, len(waiters), WAKE_AT_ONCE):
            _wake(waiters[start : start + WAKE_AT_ONCE])
            await asyncio.sleep(0)

    async def sweep(self) -> None:
        """Finds the runs another replica moved, and forgets runs nobody has read lately."""
        cutoff = time.monotonic() - self._idle_s
        for run_id in [r for r, e in self._entries.items() if e.used_at < cutoff]:
            if not self._waiters.get(run_id):
                del self._entries[run_id]
                self._generation.pop(run_id, None)
                self._woken_at.pop(run_id, None)
        held = [(r, e.snapshot.version) for r, e in self._entries.items() if not e.stale]
        for start in range(0, len(held), SWEEP_BATCH):
            batch = held[start : start + SWEEP_BATCH]
            versions = await self._read_versions([run_id for run_id, _ in batch])
            for run_id, version in batch:
                if versions.get(run_id) != version:
                    self.invalidate(run_id)

    async def sweep_forever(self, stop: asyncio.Event, interval_s: float) -> None:
        while not stop.is_set():
            try:
                await self.sweep()
            except Exception:
                # The database is away: waiters still time out and this replica's own
                # projections still wake them; the next sweep catches up.
                log.warning("reading the versions of polled runs failed", exc_info=True)
            await sleep_or_stop(stop, interval_s)

    def _evict_beyond_max(self) -> None:
        if len(self._entries) <= self._max_runs:
            return
        by_use = sorted(self._entries.items(), key=lambda item: item[1].used_at)
        for run_id, _ in by_use[: len(self._entries) - self._max_runs]:
            if not self._waiters.get(run_id):
                del self._entries[run_id]


def _wake(waiters: Sequence[asyncio.Future[None]] | set[asyncio.Future[None]]) -> None:
    for waiter in waiters:
        if not waiter.done():
            waiter.set_result(None)


def _json(body: object) -> bytes:
    # As FastAPI's JSONResponse renders.
    return json.dumps(
        body, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode("utf-8")

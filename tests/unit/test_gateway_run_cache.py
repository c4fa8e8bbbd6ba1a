"""The run cache (pure of I/O: its loader and version reader are fakes that count calls):
one load per version whatever the number of pollers, waiters woken by this replica's commits
and by another replica's (the sweep), long-polls bounded, a cached run served to its tenant
only, and an elapsed time that never goes back."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from services.gateway.problems import Problem
from services.gateway.readmodel import run_object, runview
from services.gateway.readmodel.run_cache import COALESCE_S, WAKE_AT_ONCE, RunCache, WaitBounds
from services.gateway.readmodel.run_object import RunSnapshot

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def row(version: int, *, finished_at: datetime | None = None, tenant: str = "t1") -> object:
    return SimpleNamespace(
        tenant_id=tenant,
        run_id="run-1",
        project_id="p1",
        stage="analysis",
        status="running" if finished_at is None else "succeeded",
        created_at=T0,
        started_at=T0,
        finished_at=finished_at,
        max_running=2,
        llm_calls=version,
        input_tokens=0,
        output_tokens=0,
        cost_usd=0.0,
        options="{}",
        version=version,
        updated_at=T0,
        stages_finished="[]",
        cancel_requested=False,
    )


def snapshot_at(version: int, **kwargs: object) -> RunSnapshot:
    facts = runview.RunFacts(stage="analysis", stages_finished=frozenset(), items=())
    return run_object.snapshot(row(version, **kwargs), facts)  # type: ignore[arg-type]


class Database:
    """The run's stored version; counts the reads the cache makes."""

    def __init__(self) -> None:
        self.version = 1
        self.finished_at: datetime | None = None
        self.loads = 0
        self.version_reads = 0
        self.gate: asyncio.Event | None = None

    async def load(self, tenant: str, run_id: str) -> RunSnapshot:
        self.loads += 1
        version = self.version
        if self.gate is not None:
            await self.gate.wait()
        if tenant != "t1" or run_id != "run-1":
            raise Problem("not_found", "no such run")
        return snapshot_at(version, finished_at=self.finished_at)

    async def read_versions(self, run_ids: Sequence[str]) -> dict[str, int]:
        self.version_reads += 1
        return {r: self.version for r in run_ids if r == "run-1"}


def cache_over(
    db: Database, *, per_process: int = 100, per_tenant: int = 100, **kw: object
) -> RunCache:
    return RunCache(db.load, db.read_versions, WaitBounds(per_process, per_tenant), **kw)  # type: ignore[arg-type]


async def _settled(predicate: Callable[[], bool], what: str) -> None:
    """Lets the loop run the tasks until ``predicate`` holds (a bounded number of turns)."""
    for _ in range(10_000):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError(what)


async def test_a_hundred_pollers_cost_one_load_per_version() -> None:
    db = Database()
    cache = cache_over(db)
    assert (await cache.current("t1", "run-1")).version == 1
    waiters = [
        asyncio.create_task(cache.next_version("t1", "run-1", after=1, timeout_s=5))
        for _ in range(100)
    ]
    await _settled(lambda: cache.waiting == 100, "every poller waits")
    db.version = 2
    cache.invalidate("run-1")  # this replica's projection committed version 2
    got = await asyncio.gather(*waiters)
    assert {s.version for s in got} == {2}
    assert db.loads == 2, "one load for version 1, one shared by a hundred for version 2"
    assert cache.waiting == 0


async def test_another_replicas_change_is_found_by_one_sweep_for_every_waiter() -> None:
    db = Database()
    cache = cache_over(db)
    await cache.current("t1", "run-1")
    waiters = [
        asyncio.create_task(cache.next_version("t1", "run-1", after=1, timeout_s=5))
        for _ in range(50)
    ]
    await _settled(lambda: cache.waiting == 50, "every poller waits")
    await cache.sweep()
    assert not any(w.done() for w in waiters), "nothing moved: nobody wakes"
    db.version = 3  # committed by another replica: no invalidate here
    await cache.sweep()
    assert {s.version for s in await asyncio.gather(*waiters)} == {3}
    assert db.version_reads == 2, "one read of versions per sweep, not per waiter"
    assert db.loads == 2


async def test_a_read_that_began_before_a_change_is_read_again() -> None:
    db = Database()
    db.gate = asyncio.Event()
    cache = cache_over(db)
    first = asyncio.create_task(cache.current("t1", "run-1"))
    await _settled(lambda: db.loads == 1, "the load started")
    db.version = 2
    cache.invalidate("run-1")  # committed while the read was in flight
    db.gate.set()
    assert (await first).version == 1
    assert (await cache.current("t1", "run-1")).version == 2, "the stale copy is not kept"


async def test_a_poll_that_times_out_answers_the_version_it_has() -> None:
    db = Database()
    cache = cache_over(db)
    got = await cache.next_version("t1", "run-1", after=1, timeout_s=0.05)
    assert got.version == 1
    assert cache.waiting == 0


async def test_long_polls_beyond_a_tenants_bound_are_refused_with_retry_after() -> None:
    db = Database()
    cache = cache_over(db, per_process=10, per_tenant=2)
    held = [
        asyncio.create_task(cache.next_version("t1", "run-1", after=1, timeout_s=5))
        for _ in range(2)
    ]
    await _settled(lambda: cache.waiting == 2, "two polls held")
    with pytest.raises(Problem) as refused:
        await cache.next_version("t1", "run-1", after=1, timeout_s=5)
    assert refused.value.status == 429
    assert refused.value.code == "rate_limited"
    assert refused.value.headers["Retry-After"] == "1"
    db.version = 2
    cache.invalidate("run-1")
    await asyncio.gather(*held)


async def test_long_polls_beyond_the_process_bound_are_503_with_retry_after() -> None:
    db = Database()
    cache = cache_over(db, per_process=1, per_tenant=5)
    held = asyncio.create_task(cache.next_version("t1", "run-1", after=1, timeout_s=5))
    await _settled(lambda: cache.waiting == 1, "one poll held")
    with pytest.raises(Problem) as refused:
        await cache.next_version("t1", "run-1", after=1, timeout_s=5)
    assert refused.value.status == 503
    assert "Retry-After" in refused.value.headers
    held.cancel()
    with pytest.raises(asyncio.CancelledError):
        await held
    assert cache.waiting == 0, "a poll whose client left frees its slot"


async def test_a_cached_run_is_served_to_its_tenant_only() -> None:
    db = Database()
    cache = cache_over(db)
    await cache.current("t1", "run-1")
    with pytest.raises(Problem) as refused:
        await cache.current("t2", "run-1")
    assert refused.value.status == 404


async def test_one_version_renders_the_same_bytes_and_elapsed_never_goes_back() -> None:
    now = [T0 + timedelta(seconds=29.8)]
    db = Database()
    cache = cache_over(db, clock=lambda: now[0])
    first = cache.answer(await cache.current("t1", "run-1"))
    assert first.etag == 'W/"v1"', "the clock fields move under this version"
    assert cache.answer(await cache.current("t1", "run-1")).body == first.body
    assert json.loads(first.body)["elapsed_seconds"] == 29.8
    # The stage's clock said the run finished a little before the gateway's did.
    db.version, db.finished_at = 2, T0 + timedelta(seconds=29.7)
    cache.invalidate("run-1")
    done = cache.answer(await cache.current("t1", "run-1"))
    assert json.loads(done.body)["elapsed_seconds"] == 29.8
    assert done.etag == '"v2"', "nothing moves under a finished run's version"


def test_if_none_match_compares_weakly() -> None:
    assert run_object.matches('W/"v3"', 3)
    assert run_object.matches('"v2", W/"v3"', 3)
    assert run_object.matches("*", 9)
    assert not run_object.matches('"v3"', 4)
    assert not run_object.matches(None, 3)


async def test_many_waiters_of_one_run_are_woken_at_most_every_coalesce_interval() -> None:
    db = Database()
    cache = cache_over(db, per_process=1000, per_tenant=1000)
    await cache.current("t1", "run-1")

    def poll(after: int) -> list[asyncio.Task[RunSnapshot]]:
        return [
            asyncio.create_task(cache.next_version("t1", "run-1", after=after, timeout_s=10))
            for _ in range(4 * WAKE_AT_ONCE)
        ]

    first = poll(after=1)
    await _settled(lambda: cache.waiting == len(first), "every poller waits")
    db.version = 2
    cache.invalidate("run-1")
    assert {s.version for s in await asyncio.gather(*first)} == {2}

    second = poll(after=2)
    await _settled(lambda: cache.waiting == len(second), "every poller waits again")
    db.version = 3
    cache.invalidate("run-1")  # changed again at once: held until the interval has passed
    for _ in range(100):
        await asyncio.sleep(0)
    assert not any(t.done() for t in second)
    async with asyncio.timeout(COALESCE_S * 10):
        assert {s.version for s in await asyncio.gather(*second)} == {3}

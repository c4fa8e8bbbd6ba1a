"""refresh_every: the loop behind the gauges read from the broker and the database."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from services.runtime.periodic import refresh_every
from tests.support.wait import until


def scripted(*steps: Callable[[], Awaitable[int]]) -> Callable[[], Awaitable[int]]:
    """A read doing each step in turn, then the last one again."""
    calls = iter(steps)
    last = steps[-1]

    def read() -> Awaitable[int]:
        nonlocal last
        last = next(calls, last)
        return last()

    return read


async def value(n: int) -> int:
    return n


async def fail() -> int:
    raise ConnectionError("broker down")


async def hang() -> int:
    await asyncio.sleep(3600)
    return -1


def applier(applied: list[int]) -> Callable[[int, int], int]:
    def apply(v: int, rounds: int) -> int:
        applied.append(v)
        return rounds + 1

    return apply


async def test_a_failed_or_stuck_read_is_skipped_and_the_last_values_stay(
    caplog: pytest.LogCaptureFixture,
) -> None:
    applied: list[int] = []
    stop = asyncio.Event()
    read = scripted(lambda: value(1), fail, hang, lambda: value(2))
    loop = asyncio.create_task(
        refresh_every(0.01, stop, read, applier(applied), 0, what="reading x", read_timeout_s=0.2)
    )
    await until(lambda: applied[-1:] == [2], timeout=10, what="the read after the faults")
    stop.set()
    await asyncio.wait_for(loop, 5)
    assert applied[:2] == [1, 2], "nothing applied for the failed and the stuck read"
    assert sum("reading x failed" in r.getMessage() for r in caplog.records) == 2


async def test_state_carries_from_one_round_to_the_next() -> None:
    seen: list[int] = []
    stop = asyncio.Event()

    def apply(v: int, rounds: int) -> int:
        seen.append(rounds)
        if rounds == 3:
            stop.set()
        return rounds + 1

    await asyncio.wait_for(refresh_every(0.01, stop, lambda: value(0), apply, 0, what="x"), 5)
    assert seen == [0, 1, 2, 3]


async def test_a_read_in_progress_is_abandoned_when_stopped() -> None:
    stop, reading = asyncio.Event(), asyncio.Event()
    abandoned: list[BaseException] = []

    async def stuck() -> int:
        reading.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError as cancelled:
            abandoned.append(cancelled)
            raise
        return -1

    applied: list[int] = []
    loop = asyncio.create_task(refresh_every(60, stop, stuck, applier(applied), 0, what="x"))
    await asyncio.wait_for(reading.wait(), 5)
    stop.set()
    await asyncio.wait_for(loop, 5)
    assert len(abandoned) == 1
    assert applied == []


async def test_an_interval_of_zero_turns_it_off() -> None:
    reads: list[int] = []

    async def read() -> int:
        reads.append(1)
        return 1

    await asyncio.wait_for(
        refresh_every(0, asyncio.Event(), read, lambda v, s: s, None, what="x"), 5
    )
    assert reads == []

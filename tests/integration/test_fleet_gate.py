"""The fleet gate on real databases (SQLite and PostgreSQL): separate engines stand for
separate replicas sharing the fleet database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from contracts.events import ErrorCode
from services.runtime.db import make_engine, make_sessions
from services.runtime.fleet import FLEET_HISTORY, CallRefused, CallScope, FleetGate, Limits
from services.runtime.migrate import migrate
from tests.support.wait import until

pytestmark = pytest.mark.integration

Replicas = Callable[..., FleetGate]
TWO_AT_ONCE = Limits(max_in_flight=2, tokens_per_minute=0)


@pytest.fixture
async def replicas(database_url: str) -> AsyncIterator[Replicas]:
    engines = []

    def replica(limits: Limits = TWO_AT_ONCE, slot_ttl_s: float = 30) -> FleetGate:
        engine = make_engine(database_url)
        engines.append(engine)
        return FleetGate(
            make_sessions(engine),
            limits,
            holder=f"replica-{len(engines)}",
            slot_ttl_s=slot_ttl_s,
            poll_s=0.02,
        )

    setup = make_engine(database_url)
    await migrate(setup, FLEET_HISTORY)
    await setup.dispose()
    yield replica
    for engine in engines:
        await engine.dispose()


async def test_replicas_together_never_exceed_the_in_flight_ceiling(replicas: Replicas) -> None:
    gates = [replicas(Limits(3, 0)) for _ in range(4)]
    in_flight = peak = done = 0
    release = asyncio.Event()

    async def call(gate: FleetGate) -> None:
        nonlocal in_flight, peak, done
        async with gate.slot(None, 10, 0.0):
            in_flight += 1
            peak = max(peak, in_flight)
            # The first calls hold their slots until the ceiling is seen reached, so that
            # reaching it does not depend on how fast this machine hands slots out.
            await release.wait()
            in_flight -= 1
        done += 1

    calls = asyncio.gather(*(call(gates[n % 4]) for n in range(24)))
    await until(lambda: in_flight == 3, timeout=30, what="three calls in flight")
    release.set()
    await asyncio.wait_for(calls, timeout=60)
    assert done == 24
    assert peak == 3


async def test_a_cancelled_run_gets_no_new_slot_on_any_replica(replicas: Replicas) -> None:
    gateway, worker = replicas(), replicas()
    async with worker.slot(CallScope("run-1"), 10, 0.0):
        pass
    await gateway.cancel_run("run-1")
    with pytest.raises(CallRefused) as refused:
        async with worker.slot(CallScope("run-1"), 10, 0.0):
            pass
    assert refused.value.code is ErrorCode.CANCELLED
    async with worker.slot(CallScope("run-2"), 10, 0.0):
        pass  # other runs are not affected
    await gateway.reopen_run("run-1")
    async with worker.slot(CallScope("run-1"), 10, 0.0):
        pass


async def test_a_budget_counts_what_other_replicas_spent_and_hold(replicas: Replicas) -> None:
    one, two = replicas(Limits(0, 0)), replicas(Limits(0, 0))
    scope = CallScope("run-b", budget_usd=1.0)
    async with one.slot(scope, 100, 0.4) as slot:
        slot.settle(80, 0.3)  # spent 0.30
    async with one.slot(scope, 100, 0.4) as held:  # 0.40 held while in flight
        with pytest.raises(CallRefused) as refused:
            async with two.slot(scope, 100, 0.71):  # 0.30 + 0.71 > 1: never fits
                pass
        assert refused.value.code is ErrorCode.BUDGET_EXCEEDED
        waiting = asyncio.create_task(_enter(two, 100, scope, 0.4))  # fits once settled
        await asyncio.sleep(0.2)
        assert not waiting.done(), "0.30 spent + 0.40 in flight + 0.40 > 1: it must wait"
        held.settle(50, 0.1)
    await asyncio.wait_for(waiting, 10)
    state = await two.run_state("run-b")
    # 0.30 + 0.10, and the call that waited, unsettled, counts its estimate: 0.40.
    assert state.run_spent_usd == pytest.approx(0.8)
    assert state.run_reserved_usd == pytest.approx(0.0)


async def test_the_token_window_holds_calls_until_room_is_made(replicas: Replicas) -> None:
    gate = replicas(Limits(0, 100))
    async with gate.slot(None, 60, 0.0) as slot:
        slot.settle(20, 0.0)  # used less than estimated: the window is corrected
    async with gate.slot(None, 70, 0.0):
        pass
    waiting = asyncio.create_task(_enter(gate, 50))
    await asyncio.sleep(0.2)
    assert not waiting.done(), "90 used + 50 asked > 100 per minute: it must wait"
    waiting.cancel()


async def _enter(
    gate: FleetGate, tokens: int, scope: CallScope | None = None, cost: float = 0.0
) -> None:
    async with gate.slot(scope, tokens, cost):
        pass


async def test_a_dead_holders_slot_expires(replicas: Replicas) -> None:
    dead, alive = replicas(Limits(1, 0), slot_ttl_s=0.5), replicas(Limits(1, 0))
    holder = dead.slot(None, 10, 0.0)
    await holder.__aenter__()  # a replica that takes a slot and dies without giving it back
    got = asyncio.create_task(_enter(alive, 10))
    await until(lambda: got.done(), timeout=10, what="the expired slot to be reclaimed")
    await got

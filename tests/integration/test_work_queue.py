"""The work queue and the item runner on real databases (SQLite and PostgreSQL), with a
stage worker whose behaviour each item's payload chooses."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import select, text, update

from contracts import root_envelope
from contracts.backlog import Provenance
from contracts.events import ErrorCode, Stage
from contracts.pipeline import ItemState
from services.runtime.db import make_engine, make_sessions
from services.runtime.migrate import migrate
from services.runtime.settings import Settings
from services.runtime.tables import outbox
from services.runtime.work import ItemFailure, ItemRunner, NewItem, WorkItem, WorkQueue, WorkRun
from services.runtime.work.tables import work_items
from tests.support.wait import until

pytestmark = pytest.mark.integration

PROVENANCE = Provenance(provider="fake", model="fake", prompt_version="v1", offline=True)


@dataclass
class FakeWorker:
    in_flight: int = 0
    peak: int = 0
    calls: dict[str, int] = field(default_factory=dict)
    committed: list[str] = field(default_factory=list)
    finished_runs: list[str] = field(default_factory=list)

    async def process(self, item: WorkItem, on_tokens: Any) -> str:
        self.calls[item.item_id] = self.calls.get(item.item_id, 0) + 1
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            behaviour = item.payload.get("do", "ok")
            for tokens in range(0, int(item.payload.get("ticks", 1))):
                await on_tokens(tokens * 10)
                await asyncio.sleep(item.payload.get("tick_s", 0.05))
            if behaviour == "flaky" and self.calls[item.item_id] < 2:
                raise ItemFailure(
                    ErrorCode.LLM_UNAVAILABLE, "503", retryable=True, retry_after_s=0.1
                )
            if behaviour == "refused":
                raise ItemFailure(ErrorCode.LLM_REFUSED, "no")
            if behaviour == "always_unavailable":
                raise ItemFailure(
                    ErrorCode.LLM_UNAVAILABLE, "down", retryable=True, retry_after_s=0.05
                )
            if behaviour == "hang":
                await asyncio.sleep(3600)
            return item.item_id
        finally:
            self.in_flight -= 1

    async def commit(self, session: Any, item: WorkItem, outcome: str) -> Provenance:
        self.committed.append(outcome)
        return PROVENANCE

    async def run_finished(self, session: Any, run: WorkRun) -> None:
        self.finished_runs.append(run.run_id)


@dataclass
class Rig:
    queue: WorkQueue
    sessions: Any
    settings: Settings
    worker: FakeWorker

    async def open(self, run_id: str, items: list[NewItem], close: bool = True) -> WorkRun:
        command = root_envelope(
            type="cardflow.x.requested",
            schema_version=1,
            source="t",
            tenant_id="t1",
            key=run_id,
            data={},
            run_id=run_id,
        )
        async with self.sessions.begin() as session:
            run = await self.queue.open_run(
                session, command, run_id=run_id, project_id="p1", pipeline=False, options={}
            )
            await self.queue.add_items(session, run, items)
            if close:
                await self.queue.close_run(session, run)
        return run

    async def states(self, run_id: str) -> dict[str, ItemState]:
        async with self.sessions() as session:
            return await self.queue.item_states(session, run_id)

    async def progress(self, run_id: str) -> list[dict[str, Any]]:
        async with self.sessions() as session:
            rows = await session.execute(select(outbox.c.payload).order_by(outbox.c.seq))
        events = [json.loads(r.payload) for r in rows]
        return [
            e["data"]
            for e in events
            if e["type"] == "cardflow.run.progress" and e["run_id"] == run_id
        ]

    def runner(self, **overrides: Any) -> ItemRunner:
        settings = self.settings.model_copy(update=overrides)
        return ItemRunner(settings, self.sessions, self.queue, self.worker)


@pytest.fixture
async def rig(database_url: str) -> AsyncIterator[Rig]:
    engine = make_engine(database_url)
    await migrate(engine)
    settings = Settings(
        service_name="fake",
        work_concurrency=3,
        work_heartbeat_s=0.1,
        work_lease_s=2,
        work_retry_base_s=0.05,
        work_retry_max_s=0.1,
        work_poll_interval_s=0.05,
        work_max_attempts=3,
        work_item_deadline_s=5,
        kafka_graceful_timeout_s=1,
    )
    yield Rig(WorkQueue(Stage.ANALYSIS, "fake"), make_sessions(engine), settings, FakeWorker())
    await engine.dispose()


async def run_until(
    rig: Rig, runner: ItemRunner, run_id: str, expected: dict[str, ItemState]
) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        await until(
            lambda: _states_are(rig, run_id, expected), timeout=20, what=f"states {expected}"
        )
    finally:
        stop.set()
        await task


async def _states_are(rig: Rig, run_id: str, expected: dict[str, ItemState]) -> bool:
    return await rig.states(run_id) == expected


async def test_items_run_concurrently_under_the_cap_and_the_run_finishes_once(rig: Rig) -> None:
    items = [NewItem(f"i{n}", f"item {n}", {"ticks": 4}) for n in range(7)]
    await rig.open("r1", items)
    await run_until(rig, rig.runner(), "r1", {i.item_id: ItemState.SUCCEEDED for i in items})
    assert rig.worker.peak == 3
    assert sorted(rig.worker.committed) == sorted(i.item_id for i in items)
    assert rig.worker.finished_runs == ["r1"]
    kinds = [e["kind"] for e in await rig.progress("r1")]
    assert kinds[0] == "items_planned"
    assert kinds.count("item_started") == 7
    assert kinds.count("item_succeeded") == 7
    assert kinds[-1] == "stage_finished"
    assert "item_heartbeat" in kinds


async def test_a_retryable_failure_is_retried_and_a_permanent_one_fails_with_its_code(
    rig: Rig,
) -> None:
    await rig.open(
        "r2",
        [
            NewItem("flaky", "f", {"do": "flaky"}),
            NewItem("refused", "r", {"do": "refused"}),
            NewItem("down", "d", {"do": "always_unavailable"}),
        ],
    )
    await run_until(
        rig,
        rig.runner(),
        "r2",
        {"flaky": ItemState.SUCCEEDED, "refused": ItemState.FAILED, "down": ItemState.FAILED},
    )
    assert rig.worker.calls == {"flaky": 2, "refused": 1, "down": 3}
    failed = {
        e["item_id"]: e["error"]["code"]
        for e in await rig.progress("r2")
        if e["kind"] == "item_failed"
    }
    assert failed == {"refused": "llm_refused", "down": "llm_unavailable"}


async def test_an_item_past_its_deadline_fails_as_a_timeout(rig: Rig) -> None:
    await rig.open("r3", [NewItem("slow", "s", {"do": "hang"})])
    runner = rig.runner(work_item_deadline_s=0.3, work_max_attempts=2)
    await run_until(rig, runner, "r3", {"slow": ItemState.FAILED})
    assert rig.worker.calls["slow"] == 2
    (failure,) = [e for e in await rig.progress("r3") if e["kind"] == "item_failed"]
    assert failure["error"]["code"] == "llm_timeout"


async def _stop_once_running(rig: Rig, runner: ItemRunner, running: int) -> None:
    """Starts ``runner``, waits until ``running`` items are in its worker, stops it (as on
    SIGTERM) and waits for it to return."""
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        await until(lambda: rig.worker.in_flight == running, timeout=20, what="items running")
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)


async def test_a_stopping_runner_lets_its_items_in_flight_finish(rig: Rig) -> None:
    items = [NewItem(f"d{n}", "slow", {"ticks": 15, "tick_s": 0.1}) for n in range(2)]
    await rig.open("drain", items)
    runner = rig.runner(work_drain_timeout_s=20, work_lease_s=1.2)
    await _stop_once_running(rig, runner, running=2)
    # 1.5 s of work outlived a 1.2 s lease: the drain kept renewing it.
    assert await rig.states("drain") == {"d0": ItemState.SUCCEEDED, "d1": ItemState.SUCCEEDED}
    assert rig.worker.calls == {"d0": 1, "d1": 1}
    kinds = [e["kind"] for e in await rig.progress("drain")]
    assert "item_postponed" not in kinds
    assert kinds[-1] == "stage_finished"


async def test_items_running_past_the_drain_are_handed_back_and_done_by_the_next_runner(
    rig: Rig,
) -> None:
    await rig.open("handback", [NewItem("long", "slow", {"ticks": 40, "tick_s": 0.05})])
    await _stop_once_running(rig, rig.runner(work_drain_timeout_s=0.2), running=1)
    # Handed back at once, not left to a lease that must run out, and not failed.
    assert await rig.states("handback") == {"long": ItemState.PENDING}
    (postponed,) = [e for e in await rig.progress("handback") if e["kind"] == "item_postponed"]
    assert postponed["error"]["message"] == "service stopping"
    await run_until(rig, rig.runner(), "handback", {"long": ItemState.SUCCEEDED})
    assert rig.worker.calls == {"long": 2}


async def test_waiting_counts_the_items_a_replica_could_claim_now(rig: Rig) -> None:
    """The queue depth autoscaling follows (cardflow_items_waiting)."""

    async def waiting() -> int:
        async with rig.sessions() as session:
            return await rig.queue.waiting(session)

    await rig.open("w1", [NewItem(f"w{n}", "t") for n in range(4)])
    await rig.open("w2", [NewItem("x", "t", wait_key="upstream")])  # its input: not yet
    assert await waiting() == 4
    async with rig.sessions.begin() as session:
        (_short_lease,) = await rig.queue.claim(session, "a", 1, lease_s=0.5)
        (held,) = await rig.queue.claim(session, "b", 1, lease_s=60)
    assert await waiting() == 2
    async with rig.sessions.begin() as session:
        await rig.queue.postpone(session, held, "b", 60, "rate limited")  # not due yet
    assert await waiting() == 2
    # A lease that ran out: claimable again, so waiting again.
    await until(lambda: _equals(waiting(), 3), timeout=10, what="the lost lease")
    async with rig.sessions.begin() as session:
        await rig.queue.cancel_run(session, control("w1"), "w1", "p1")
    assert await waiting() == 0


async def _equals(value: Any, expected: int) -> bool:
    return bool(await value == expected)


async def test_an_item_whose_owner_vanished_is_claimed_again_after_its_lease(rig: Rig) -> None:
    await rig.open("r4", [NewItem("orphan", "o")])
    async with rig.sessions.begin() as session:
        (claimed,) = await rig.queue.claim(session, "dead-replica", 5, lease_s=0.3)
    assert claimed.attempts == 1
    async with rig.sessions.begin() as session:
        assert await rig.queue.claim(session, "other", 5, lease_s=5) == []
    await run_until(rig, rig.runner(), "r4", {"orphan": ItemState.SUCCEEDED})
    async with rig.sessions.begin() as session:
        # The vanished owner can no longer change the item.
        assert not await rig.queue.fail(
            session, claimed, "dead-replica", ErrorCode.INTERNAL, "late"
        )


async def test_waiting_items_start_only_when_their_input_is_released(rig: Rig) -> None:
    await rig.open("r5", [NewItem("ready", "r"), NewItem("later", "l", wait_key="card:later")])
    await run_until(
        rig, rig.runner(), "r5", {"ready": ItemState.SUCCEEDED, "later": ItemState.WAITING}
    )
    assert rig.worker.finished_runs == []
    async with rig.sessions.begin() as session:
        assert await rig.queue.release(session, "card:later") == 1
    await run_until(
        rig, rig.runner(), "r5", {"ready": ItemState.SUCCEEDED, "later": ItemState.SUCCEEDED}
    )
    assert rig.worker.finished_runs == ["r5"]


async def test_a_redelivered_command_adds_no_item_twice(rig: Rig) -> None:
    items = [NewItem("a", "a"), NewItem("b", "b")]
    run = await rig.open("r6", items, close=False)
    async with rig.sessions.begin() as session:
        assert await rig.queue.add_items(session, run, items) == []
    assert set(await rig.states("r6")) == {"a", "b"}


def control(run_id: str) -> Any:
    return root_envelope(
        type="cardflow.run.control",
        schema_version=1,
        source="gateway",
        tenant_id="t1",
        key=run_id,
        data={},
        run_id=run_id,
        project_id="p1",
    )


async def test_a_cancel_stops_running_items_at_their_heartbeat_and_cancels_the_rest(
    rig: Rig,
) -> None:
    items = [NewItem(f"c{n}", f"item {n}", {"do": "hang"}) for n in range(5)]
    await rig.open("rc", items)
    runner = rig.runner(work_concurrency=2)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        await until(lambda: rig.worker.in_flight == 2, timeout=10, what="two items running")
        async with rig.sessions.begin() as session:
            await rig.queue.cancel_run(session, control("rc"), "rc", "p1")
        await until(
            lambda: _states_are(rig, "rc", {i.item_id: ItemState.CANCELLED for i in items}),
            timeout=10,
            what="every item cancelled",
        )
    finally:
        stop.set()
        await task
    assert sum(rig.worker.calls.values()) == 2, "an item started after the cancel"
    assert rig.worker.finished_runs == [], "a cancelled run must not start the next stage"
    kinds = [e["kind"] for e in await rig.progress("rc")]
    assert kinds.count("item_cancelled") == 5
    assert kinds[-1] == "stage_finished"


async def test_a_cancel_before_the_command_leaves_a_tombstone_that_cancels_its_items(
    rig: Rig,
) -> None:
    async with rig.sessions.begin() as session:
        await rig.queue.cancel_run(session, control("rt"), "rt", "p1")
    await rig.open("rt", [NewItem("late", "l")])
    assert await rig.states("rt") == {"late": ItemState.CANCELLED}
    kinds = [e["kind"] for e in await rig.progress("rt")]
    assert kinds == ["stage_finished", "item_cancelled"]
    # A retry removes the tombstone's cancel: the item runs.
    async with rig.sessions.begin() as session:
        assert await rig.queue.retry_run(session, "rt") == ["late"]
    await run_until(rig, rig.runner(), "rt", {"late": ItemState.SUCCEEDED})


async def test_a_retry_requeues_only_failed_and_cancelled_items_with_fresh_attempts(
    rig: Rig,
) -> None:
    await rig.open("rr", [NewItem("ok", "o"), NewItem("refused", "r", {"do": "refused"})])
    await run_until(
        rig, rig.runner(), "rr", {"ok": ItemState.SUCCEEDED, "refused": ItemState.FAILED}
    )
    assert rig.worker.finished_runs == ["rr"]
    async with rig.sessions.begin() as session:
        assert await rig.queue.retry_run(session, "rr") == ["refused"]
        assert await rig.queue.retry_run(session, "rr") == [], "a second retry finds nothing"
    async with rig.sessions() as session:
        run = await rig.queue.get_run(session, "rr")
    assert run is not None
    assert run.state.value == "closed"
    await run_until(
        rig, rig.runner(), "rr", {"ok": ItemState.SUCCEEDED, "refused": ItemState.FAILED}
    )
    assert rig.worker.calls == {"ok": 1, "refused": 2}
    assert rig.worker.finished_runs == ["rr", "rr"], "the run finishes again, once"
    kinds = [e["kind"] for e in await rig.progress("rr")]
    assert kinds.count("item_requeued") == 1
    assert kinds.count("stage_finished") == 2


# PostgreSQL only: SQLite lets one writer at a time, so the two transactions cannot overlap.
@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_the_last_two_items_ending_in_two_transactions_at_once_finish_the_run(
    rig: Rig,
) -> None:
    """PostgreSQL read committed: each transaction ends its item, then counts the run's open
    items. Unless the count waits for the other transaction, both count one open item and
    the run never finishes (the stage would never say stage_finished)."""
    await rig.open("rs", [NewItem("a", "a"), NewItem("b", "b")])

    async def end(session: Any, item_id: str) -> None:
        await session.execute(
            update(work_items)
            .where(work_items.c.run_id == "rs", work_items.c.item_id == item_id)
            .values(state=ItemState.SUCCEEDED.value)
        )

    first = rig.sessions()
    second = rig.sessions()
    async with first, second:
        await first.begin()
        await second.begin()
        await end(first, "a")
        await end(second, "b")
        assert not await rig.queue.finish_if_done(first, "rs"), "b is not committed yet"
        counting = asyncio.create_task(rig.queue.finish_if_done(second, "rs"))

        async def waiting_or_done() -> bool:
            if counting.done():
                return True
            async with rig.sessions() as probe:
                waiting = await probe.execute(
                    text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
                )
                return bool(waiting.scalar_one())

        await until(waiting_or_done, timeout=10, what="the second count to run or to wait")
        await first.commit()
        finished = await asyncio.wait_for(counting, timeout=10)
        await second.commit()
    assert finished, "the second transaction must see the first one's item ended"
    kinds = [e["kind"] for e in await rig.progress("rs")]
    assert kinds.count("stage_finished") == 1


async def test_a_finished_run_given_more_items_runs_them_and_finishes_again_once(
    rig: Rig,
) -> None:
    await rig.open("rf", [NewItem("first", "f")])
    await run_until(rig, rig.runner(), "rf", {"first": ItemState.SUCCEEDED})
    async with rig.sessions.begin() as session:
        run = await rig.queue.get_run(session, "rf")
        assert run is not None
        assert run.state.value == "finished"
        await rig.queue.add_items(session, run, [NewItem("late", "l")])
        again = await rig.queue.get_run(session, "rf")
    assert again is not None
    assert again.state.value == "closed", "more work reopens the run (closed, not open)"
    await run_until(
        rig, rig.runner(), "rf", {"first": ItemState.SUCCEEDED, "late": ItemState.SUCCEEDED}
    )
    assert rig.worker.finished_runs == ["rf", "rf"]
    kinds = [e["kind"] for e in await rig.progress("rf")]
    assert kinds.count("stage_finished") == 2
    assert kinds[-1] == "stage_finished"

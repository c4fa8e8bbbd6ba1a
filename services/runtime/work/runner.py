"""The item runner: works a stage's ready items concurrently, outside any Kafka handler.

Per item: claim (lease), then the stage's slow ``process`` under a hard deadline with a
heartbeat that renews the lease and reports tokens so far, then one transaction that stores
the result, marks the item and emits its events. The runner is the one owner of retries for
items: a retryable failure goes back to the queue with backoff (or the provider's
Retry-After) without holding a slot, up to ``work_max_attempts``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts.backlog import Provenance
from contracts.events import ErrorCode
from contracts.pipeline import ItemState
from services.runtime import metrics
from services.runtime.backoff import full_jitter, sleep_or_stop
from services.runtime.fleet import CallScope, call_scope
from services.runtime.logging import bind
from services.runtime.settings import Settings
from services.runtime.tracing import run_span
from services.runtime.work.outcomes import (
    Committed,
    ItemFailure,
    OnTokens,
    StageWorker,
    as_failure,
    retry_delay,
)
from services.runtime.work.queue import WorkQueue
from services.runtime.work.records import Beat, WorkItem

log = logging.getLogger(__name__)


class ItemRunner:
    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        queue: WorkQueue,
        worker: StageWorker,
        *,
        on_committed: Callable[[], None] = lambda: None,
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._queue = queue
        self._worker = worker
        self._on_committed = on_committed
        self._owner = f"{settings.service_name}:{settings.instance_id}:{id(self):x}"
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._claimed: dict[tuple[str, str], WorkItem] = {}
        # (started, last lease renewal) of each item being worked on, by monotonic clock;
        # read by the metrics thread (a dict read whole under the GIL).
        self._clock: dict[tuple[str, str], tuple[float, float]] = {}
        self._stage = queue.stage.value
        metrics.ITEM_HEARTBEAT_AGE.labels(stage=self._stage).set_function(self._stalest_beat)

    def _stalest_beat(self) -> float:
        beats = [last for _, last in tuple(self._clock.values())]
        return time.monotonic() - min(beats) if beats else 0.0

    def _ended(self, item: WorkItem, outcome: str, code: ErrorCode | None = None) -> None:
        clock = self._clock.get((item.run.run_id, item.item_id))
        metrics.ITEMS.labels(
            stage=self._stage, outcome=outcome, code=code.value if code else ""
        ).inc()
        if clock is not None:
            metrics.ITEM_DURATION.labels(stage=self._stage, outcome=outcome).observe(
                time.monotonic() - clock[0]
            )

    def notify(self) -> None:
        """New items may be ready: look now rather than at the next poll."""
        self._wake.set()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def run(self, stop: asyncio.Event) -> None:
        attempt = 0
        while not stop.is_set():
            try:
                await self._claim_and_start()
                attempt = 0
            except Exception:
                attempt += 1
                log.warning("claiming items failed; retrying", exc_info=True)
                await sleep_or_stop(stop, full_jitter(attempt, 0.5, 10.0))
                continue
            self._wake.clear()
            await self._wait(stop)
        await self._drain()

    async def _drain(self) -> None:
        """Shutdown: no new claims; items in flight run on, leases renewed, for up to
        ``work_drain_timeout_s`` (a call cut short is paid twice); the rest are handed back
        to the queue at once (not failed, and not left to a lease that must run out)."""
        if self._tasks:
            log.info(
                "stopping: letting items in flight finish",
                extra={
                    "fields": {
                        "items": len(self._tasks),
                        "drain_timeout_s": self._settings.work_drain_timeout_s,
                    }
                },
            )
            await asyncio.wait(set(self._tasks), timeout=self._settings.work_drain_timeout_s)
        abandoned = dict(self._claimed)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if abandoned:
            async with self._sessions.begin() as session:
                for item in abandoned.values():
                    await self._queue.postpone(session, item, self._owner, 0, "service stopping")
                    self._ended(item, "released")
            self._on_committed()

    async def _wait(self, stop: asyncio.Event) -> None:
        waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(self._wake.wait())]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait(
                waiters,
                timeout=self._settings.work_poll_interval_s,
                return_when=asyncio.FIRST_COMPLETED,
            )
        for waiter in waiters:
            waiter.cancel()

    async def _claim_and_start(self) -> None:
        free = self._settings.work_concurrency - len(self._tasks)
        if free <= 0:
            return
        async with self._sessions.begin() as session:
            reaped = await self._queue.reap_cancelled(session)
            for run_id in reaped:
                await self._queue.finish_if_done(session, run_id)
            items = await self._queue.claim(session, self._owner, free, self._settings.work_lease_s)
        if reaped:
            self._on_committed()
        if not items:
            return
        self._on_committed()
        for item in items:
            self._claimed[(item.run.run_id, item.item_id)] = item
            task = asyncio.create_task(self._work(item), name=f"item-{item.item_id}")
            self._tasks.add(task)
            task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._wake.set()

    async def _work(self, item: WorkItem) -> None:
        key = (item.run.run_id, item.item_id)
        now = time.monotonic()
        self._clock[key] = (now, now)
        running = metrics.ITEMS_RUNNING.labels(stage=self._stage)
        running.inc()
        try:
            await self._work_item(item)
        finally:
            self._claimed.pop(key, None)
            self._clock.pop(key, None)
            running.dec()

    async def _work_item(self, item: WorkItem) -> None:
        with bind(
            run_id=item.run.run_id,
            project_id=item.run.project_id,
            tenant_id=item.run.tenant_id,
            correlation_id=item.run.correlation_id,
            item_id=item.item_id,
        ):
            started = time.monotonic()
            tokens = 0
            lost = asyncio.Event()
            cancelled = asyncio.Event()

            async def on_tokens(count: int) -> None:
                nonlocal tokens
                tokens = max(tokens, count)

            work = asyncio.create_task(self._traced(item, on_tokens))
            beat = asyncio.create_task(
                self._heartbeats(item, lambda: tokens, lost, cancelled, work)
            )
            try:
                outcome: Any = await work
            except asyncio.CancelledError:
                if lost.is_set():
                    log.warning("lease lost; another replica owns the item now")
                    return
                if cancelled.is_set():
                    log.info("run cancelled; item stopped")
                    await self._cancelled(item)
                    return
                raise
            except BaseException as error:
                await self._failed(item, as_failure(error))
                return
            finally:
                beat.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await beat
            await self._succeeded(item, outcome)
            log.info(
                "item done", extra={"fields": {"duration_s": round(time.monotonic() - started, 3)}}
            )

    async def _traced(self, item: WorkItem, on_tokens: OnTokens) -> Any:
        with run_span(
            f"{self._stage} item",
            item.run.run_id,
            **{"cardflow.item_id": item.item_id, "cardflow.attempt": item.attempts},
        ):
            return await self._process(item, on_tokens)

    async def _process(self, item: WorkItem, on_tokens: OnTokens) -> Any:
        budget = item.run.options.get("budget_usd")
        scope = CallScope(item.run.run_id, float(budget) if budget is not None else None)
        with call_scope(scope):
            async with asyncio.timeout(self._settings.work_item_deadline_s):
                return await self._worker.process(item, on_tokens)

    async def _heartbeats(
        self,
        item: WorkItem,
        tokens: Callable[[], int],
        lost: asyncio.Event,
        cancelled: asyncio.Event,
        work: asyncio.Task[Any],
    ) -> None:
        while True:
            await asyncio.sleep(self._settings.work_heartbeat_s)
            try:
                async with self._sessions.begin() as session:
                    beat = await self._queue.heartbeat(
                        session, item, self._owner, self._settings.work_lease_s, tokens()
                    )
            except Exception:
                log.warning("heartbeat failed", exc_info=True)
                continue
            self._on_committed()
            key = (item.run.run_id, item.item_id)
            if beat is Beat.HELD and key in self._clock:
                self._clock[key] = (self._clock[key][0], time.monotonic())
            if beat is not Beat.HELD:
                (lost if beat is Beat.LOST else cancelled).set()
                work.cancel()
                return

    async def _succeeded(self, item: WorkItem, outcome: Any) -> None:
        try:
            async with self._sessions.begin() as session:
                committed = await self._worker.commit(session, item, outcome)
                if isinstance(committed, Provenance):
                    committed = Committed(committed)
                if not await self._queue.succeed(
                    session, item, self._owner, committed.provenance, committed.produced
                ):
                    # Lost the lease meanwhile: roll back, the new owner's result counts.
                    await session.rollback()
                    return
                await self._finish_run_if_done(session, item)
        except Exception as error:
            log.exception("storing the item's result failed")
            await self._failed(item, as_failure(error))
            return
        self._ended(item, ItemState.SUCCEEDED)
        self._on_committed()

    async def _cancelled(self, item: WorkItem) -> None:
        async with self._sessions.begin() as session:
            if await self._queue.cancel_item(session, item, self._owner):
                await self._finish_run_if_done(session, item)
        self._ended(item, ItemState.CANCELLED, ErrorCode.CANCELLED)
        self._on_committed()

    async def _failed(self, item: WorkItem, failure: ItemFailure) -> None:
        if failure.code is ErrorCode.CANCELLED:
            # Refused at the fleet gate: the cancel got there before the control message.
            await self._cancelled(item)
            return
        settings = self._settings
        again = failure.retryable and item.attempts < settings.work_max_attempts
        async with self._sessions.begin() as session:
            if again:
                await self._queue.postpone(
                    session,
                    item,
                    self._owner,
                    retry_delay(settings, item.attempts, failure.retry_after_s),
                    f"{failure.code.value}: {failure.message}",
                    code=failure.code,
                    usage=failure.usage,
                )
            elif await self._queue.fail(
                session, item, self._owner, failure.code, failure.message, usage=failure.usage
            ):
                await self._finish_run_if_done(session, item)
        log.warning(
            "item attempt failed",
            extra={
                "fields": {
                    "error_code": failure.code.value,
                    "attempt": item.attempts,
                    "retryable": failure.retryable,
                }
            },
        )
        self._ended(item, "retried" if again else ItemState.FAILED, failure.code)
        self._on_committed()

    async def _finish_run_if_done(self, session: AsyncSession, item: WorkItem) -> None:
        if await self._queue.finish_if_done(session, item.run.run_id):
            run = await self._queue.get_run(session, item.run.run_id)
            assert run is not None
            if not run.cancel_requested:  # a cancelled pipeline starts no next stage
                await self._worker.run_finished(session, run)

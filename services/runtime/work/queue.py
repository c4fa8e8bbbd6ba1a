"""Database operations of the work queue, each inside the caller's transaction.

Every state change of an item writes its progress event to the outbox in the same
transaction, so what a client sees never disagrees with what the service did.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Envelope
from contracts.backlog import Provenance
from contracts.events import (
    AttemptUsage,
    ErrorCode,
    ItemError,
    PlannedItem,
    ProgressKind,
    RunProgress,
    Stage,
)
from contracts.pipeline import ItemState
from contracts.topics import RUNS_PROGRESS
from services.runtime import metrics, outbox
from services.runtime.db import dialect_insert
from services.runtime.work.tables import work_items, work_runs

TERMINAL = (ItemState.SUCCEEDED, ItemState.FAILED, ItemState.CANCELLED)


class RunState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    FINISHED = "finished"
    TOMBSTONE = "tombstone"
    """Cancelled before any command opened it here: a command arriving later finds it and
    adds its items already cancelled; a retry removes it."""


class Beat(StrEnum):
    """What a heartbeat found."""

    HELD = "held"
    LOST = "lost"
    """Another owner has the item now (this lease ran out)."""
    CANCELLED = "cancelled"
    """The item's run was cancelled: stop working on it."""


@dataclass(frozen=True, slots=True)
class WorkRun:
    run_id: str
    stage: Stage
    project_id: str
    tenant_id: str
    correlation_id: str
    causation_id: str | None
    pipeline: bool
    options: dict[str, Any]
    scope: list[str]
    state: RunState
    cancel_requested: bool


@dataclass(frozen=True, slots=True)
class WorkItem:
    run: WorkRun
    item_id: str
    title: str
    payload: dict[str, Any]
    attempts: int


@dataclass(frozen=True, slots=True)
class NewItem:
    item_id: str
    title: str
    payload: dict[str, Any] = field(default_factory=dict)
    wait_key: str | None = None
    """Set when the item's input has not arrived yet; ``release(wait_key)`` makes it ready."""
    planning: bool = False
    """The item plans the stage's other items (its commit adds them): see ``PlannedItem``."""


def _ready(now: datetime) -> ColumnElement[bool]:
    """An item a replica may claim: pending and due, or running with its lease run out."""
    return or_(
        and_(work_items.c.state == ItemState.PENDING.value, work_items.c.not_before <= now),
        and_(work_items.c.state == ItemState.RUNNING.value, work_items.c.lease_until < now),
    )


def _now() -> datetime:
    return datetime.now(UTC)


def stage_outcome(cancelled: bool, states: list[ItemState]) -> str:
    """How a stage's part of a run ended, for metrics: cancelled, succeeded (every item),
    failed (none succeeded) or partial."""
    if cancelled:
        return "cancelled"
    succeeded = sum(s is ItemState.SUCCEEDED for s in states)
    if succeeded == len(states):
        return "succeeded"
    return "failed" if succeeded == 0 else "partial"


def _run_from_row(row: Any) -> WorkRun:
    return WorkRun(
        run_id=row.run_id,
        stage=Stage(row.stage),
        project_id=row.project_id,
        tenant_id=row.tenant_id,
        correlation_id=row.correlation_id,
        causation_id=row.causation_id,
        pipeline=bool(row.pipeline),
        options=json.loads(row.options or "{}"),
        scope=json.loads(row.scope or "[]"),
        state=RunState(row.state),
        cancel_requested=bool(row.cancel_requested),
    )


class WorkQueue:
    """The queue of one stage in one service."""

    def __init__(self, stage: Stage, source: str) -> None:
        self.stage = stage
        self.source = source

    # --- runs --------------------------------------------------------------------------

    async def open_run(
        self,
        session: AsyncSession,
        command: Envelope,
        *,
        run_id: str,
        project_id: str,
        pipeline: bool,
        options: dict[str, Any],
        scope: list[str] | None = None,
    ) -> WorkRun:
        """The run, created on first sight; the same run when a later command adds to it.

        ``scope`` records what the run was asked to cover (e.g. card ids) for stages that
        expand it later, once their inputs are all there."""
        await session.execute(
            dialect_insert(session)(work_runs)
            .values(
                run_id=run_id,
                stage=self.stage.value,
                project_id=project_id,
                tenant_id=command.tenant_id,
                correlation_id=command.correlation_id,
                causation_id=command.id,
                pipeline=pipeline,
                options=json.dumps(options),
                scope=json.dumps(scope or []),
                state=RunState.OPEN.value,
                cancel_requested=False,
                created_at=_now(),
            )
            .on_conflict_do_nothing()
        )
        # A run cancelled before its command came here: it is this run now, still cancelled.
        await session.execute(
            update(work_runs)
            .where(work_runs.c.run_id == run_id, work_runs.c.state == RunState.TOMBSTONE.value)
            .values(
                stage=self.stage.value,
                project_id=project_id,
                correlation_id=command.correlation_id,
                causation_id=command.id,
                pipeline=pipeline,
                options=json.dumps(options),
                scope=json.dumps(scope or []),
                state=RunState.FINISHED.value,
            )
        )
        run = await self.get_run(session, run_id)
        assert run is not None
        return run

    async def get_run(self, session: AsyncSession, run_id: str) -> WorkRun | None:
        row = (await session.execute(select(work_runs).where(work_runs.c.run_id == run_id))).first()
        return _run_from_row(row) if row else None

    async def add_items(
        self, session: AsyncSession, run: WorkRun, items: Sequence[NewItem]
    ) -> list[NewItem]:
        """Adds the items not already in the run (a redelivered command adds nothing)."""
        existing = set(
            (
                await session.execute(
                    select(work_items.c.item_id).where(
                        work_items.c.run_id == run.run_id,
                        work_items.c.item_id.in_([i.item_id for i in items]),
                    )
                )
            ).scalars()
        )
        count = (
            await session.execute(
                select(func.count())
                .select_from(work_items)
                .where(work_items.c.run_id == run.run_id)
            )
        ).scalar_one()
        new = [i for i in dict((i.item_id, i) for i in items).values() if i.item_id not in existing]
        now = _now()
        if run.cancel_requested:
            # Items of a cancelled run are recorded, never worked: the ones the gateway
            # already counts (announced by their parent's success) become cancelled there.
            for offset, item in enumerate(new):
                await session.execute(
                    work_items.insert().values(
                        run_id=run.run_id,
                        item_id=item.item_id,
                        seq=int(count) + offset,
                        title=item.title,
                        payload=json.dumps(item.payload),
                        state=ItemState.CANCELLED.value,
                        wait_key=item.wait_key,
                        attempts=0,
                        not_before=now,
                        error_code=ErrorCode.CANCELLED.value,
                        error_message="the run was cancelled",
                        created_at=now,
                        updated_at=now,
                    )
                )
                await self.emit(session, run, ProgressKind.ITEM_CANCELLED, item_id=item.item_id)
            return []
        for offset, item in enumerate(new):
            await session.execute(
                work_items.insert().values(
                    run_id=run.run_id,
                    item_id=item.item_id,
                    seq=int(count) + offset,
                    title=item.title,
                    payload=json.dumps(item.payload),
                    state=(ItemState.WAITING if item.wait_key else ItemState.PENDING).value,
                    wait_key=item.wait_key,
                    attempts=0,
                    not_before=now,
                    created_at=now,
                    updated_at=now,
                )
            )
        if new:
            # A finished run given more work (a retried item upstream made more) is closed
            # again, not open: no other command will close it, and it finishes again, once.
            await session.execute(
                update(work_runs)
                .where(
                    work_runs.c.run_id == run.run_id,
                    work_runs.c.state == RunState.FINISHED.value,
                )
                .values(state=RunState.CLOSED.value, finished_at=None)
            )
            await self.emit(
                session,
                run,
                ProgressKind.ITEMS_PLANNED,
                items=[
                    PlannedItem(item_id=i.item_id, title=i.title, planning=i.planning) for i in new
                ],
            )
        return new

    async def close_run(self, session: AsyncSession, run: WorkRun) -> bool:
        """No more items will be added; returns True if that finished the run."""
        await session.execute(
            update(work_runs)
            .where(work_runs.c.run_id == run.run_id, work_runs.c.state == RunState.OPEN.value)
            .values(state=RunState.CLOSED.value)
        )
        return await self.finish_if_done(session, run.run_id)

    async def finish_if_done(self, session: AsyncSession, run_id: str) -> bool:
        """Marks a closed run whose items are all terminal finished (once); True if it did."""
        # Two items of a run ending at once in two transactions would each count the other as
        # still open (PostgreSQL read committed) and the run would never finish. Locking the
        # run row first serialises them: the second one counts after the first has committed.
        await session.execute(
            select(work_runs.c.run_id).where(work_runs.c.run_id == run_id).with_for_update()
        )
        open_items = (
            await session.execute(
                select(func.count())
                .select_from(work_items)
                .where(
                    work_items.c.run_id == run_id,
                    work_items.c.state.not_in([s.value for s in TERMINAL]),
                )
            )
        ).scalar_one()
        if open_items:
            return False
        result = await session.execute(
            update(work_runs)
            .where(work_runs.c.run_id == run_id, work_runs.c.state == RunState.CLOSED.value)
            .values(state=RunState.FINISHED.value, finished_at=_now())
        )
        if getattr(result, "rowcount", 0) != 1:
            return False
        run = await self.get_run(session, run_id)
        assert run is not None
        await self.emit(session, run, ProgressKind.STAGE_FINISHED)
        await self._observe_finished(session, run)
        return True

    async def _observe_finished(self, session: AsyncSession, run: WorkRun) -> None:
        row = (
            await session.execute(
                select(work_runs.c.created_at).where(work_runs.c.run_id == run.run_id)
            )
        ).first()
        states = await self.item_states(session, run.run_id)
        outcome = stage_outcome(run.cancel_requested, list(states.values()))
        created = row.created_at if row is not None else None
        if created is not None and created.tzinfo is None:
            created = created.replace(tzinfo=UTC)  # SQLite keeps no zone
        duration = (_now() - created).total_seconds() if created is not None else 0.0
        metrics.STAGE_RUN_DURATION.labels(stage=self.stage.value, outcome=outcome).observe(
            max(duration, 0.0)
        )

    async def cancel_run(
        self, session: AsyncSession, control: Envelope, run_id: str, project_id: str
    ) -> None:
        """No item of the run starts from now on; items not started are cancelled at once,
        running ones at their next heartbeat. A run not seen here yet becomes a tombstone.
        Once nothing of the run is running here, the stage reports itself finished."""
        await session.execute(
            dialect_insert(session)(work_runs)
            .values(
                run_id=run_id,
                stage=self.stage.value,
                project_id=project_id,
                tenant_id=control.tenant_id,
                correlation_id=control.correlation_id,
                causation_id=control.id,
                pipeline=False,
                options="{}",
                scope="[]",
                state=RunState.TOMBSTONE.value,
                cancel_requested=True,
                created_at=_now(),
                finished_at=_now(),
            )
            .on_conflict_do_nothing()
        )
        await session.execute(
            update(work_runs).where(work_runs.c.run_id == run_id).values(cancel_requested=True)
        )
        run = await self.get_run(session, run_id)
        assert run is not None
        waiting = (
            await session.execute(
                select(work_items.c.item_id).where(
                    work_items.c.run_id == run_id,
                    work_items.c.state.in_([ItemState.WAITING.value, ItemState.PENDING.value]),
                )
            )
        ).scalars()
        for item_id in list(waiting):
            await self._cancel(session, run, item_id)
        if run.state is RunState.TOMBSTONE:
            await self.emit(session, run, ProgressKind.STAGE_FINISHED)
            return
        await session.execute(
            update(work_runs)
            .where(work_runs.c.run_id == run_id, work_runs.c.state == RunState.OPEN.value)
            .values(state=RunState.CLOSED.value)
        )
        if not await self.finish_if_done(session, run_id) and await self._all_terminal(
            session, run_id
        ):
            # Finished before the cancel: say so again, the gateway may wait for it.
            await self.emit(session, run, ProgressKind.STAGE_FINISHED)

    async def retry_run(self, session: AsyncSession, run_id: str) -> list[str]:
        """Failed and cancelled items go back to the queue with their attempts reset; the run
        is no longer cancelled. A tombstone is removed: the command that comes opens the run.
        Returns the requeued item ids."""
        run = await self.get_run(session, run_id)
        if run is None:
            return []
        if run.state is RunState.TOMBSTONE:
            await session.execute(delete(work_runs).where(work_runs.c.run_id == run_id))
            return []
        again = list(
            (
                await session.execute(
                    select(work_items.c.item_id)
                    .where(
                        work_items.c.run_id == run_id,
                        work_items.c.state.in_([ItemState.FAILED.value, ItemState.CANCELLED.value]),
                    )
                    .order_by(work_items.c.seq)
                )
            ).scalars()
        )
        now = _now()
        if again:
            await session.execute(
                update(work_items)
                .where(work_items.c.run_id == run_id, work_items.c.item_id.in_(again))
                .values(
                    state=ItemState.PENDING.value,
                    attempts=0,
                    not_before=now,
                    lease_owner=None,
                    lease_until=None,
                    error_code=None,
                    error_message=None,
                    updated_at=now,
                )
            )
        reopened = RunState.CLOSED if again and run.state is RunState.FINISHED else run.state
        await session.execute(
            update(work_runs)
            .where(work_runs.c.run_id == run_id)
            .values(cancel_requested=False, state=reopened.value, finished_at=None)
        )
        run = await self.get_run(session, run_id)
        assert run is not None
        for item_id in again:
            await self.emit(session, run, ProgressKind.ITEM_REQUEUED, item_id=item_id)
        if not again and run.state is RunState.FINISHED:
            # Nothing to redo here: the gateway, which forgot which stages were done when
            # the retry began, hears it again.
            await self.emit(session, run, ProgressKind.STAGE_FINISHED)
        return again

    async def _all_terminal(self, session: AsyncSession, run_id: str) -> bool:
        open_items = (
            await session.execute(
                select(func.count())
                .select_from(work_items)
                .where(
                    work_items.c.run_id == run_id,
                    work_items.c.state.not_in([s.value for s in TERMINAL]),
                )
            )
        ).scalar_one()
        return int(open_items) == 0

    async def _cancel(self, session: AsyncSession, run: WorkRun, item_id: str) -> None:
        await session.execute(
            update(work_items)
            .where(
                work_items.c.run_id == run.run_id,
                work_items.c.item_id == item_id,
                work_items.c.state.not_in([s.value for s in TERMINAL]),
            )
            .values(
                state=ItemState.CANCELLED.value,
                lease_owner=None,
                lease_until=None,
                error_code=ErrorCode.CANCELLED.value,
                error_message="the run was cancelled",
                updated_at=_now(),
            )
        )
        await self.emit(session, run, ProgressKind.ITEM_CANCELLED, item_id=item_id)

    async def reap_cancelled(self, session: AsyncSession) -> list[str]:
        """Running items of cancelled runs whose holder is gone (lease ran out) are cancelled:
        nobody else will claim them. Returns the runs touched."""
        rows = (
            await session.execute(
                select(work_items.c.run_id, work_items.c.item_id)
                .join(work_runs, work_runs.c.run_id == work_items.c.run_id)
                .where(
                    work_runs.c.cancel_requested.is_(True),
                    work_items.c.state == ItemState.RUNNING.value,
                    work_items.c.lease_until < _now(),
                )
                .with_for_update(skip_locked=True, of=work_items)
            )
        ).all()
        runs: list[str] = []
        for run_id, item_id in rows:
            run = await self.get_run(session, run_id)
            assert run is not None
            await self._cancel(session, run, item_id)
            if run_id not in runs:
                runs.append(run_id)
        return runs

    async def item_states(self, session: AsyncSession, run_id: str) -> dict[str, ItemState]:
        rows = await session.execute(
            select(work_items.c.item_id, work_items.c.state).where(work_items.c.run_id == run_id)
        )
        return {r.item_id: ItemState(r.state) for r in rows}

    # --- items -------------------------------------------------------------------------

    async def release(self, session: AsyncSession, wait_key: str) -> int:
        """Makes waiting items whose input has now arrived ready to be worked."""
        result = await session.execute(
            update(work_items)
            .where(
                work_items.c.wait_key == wait_key,
                work_items.c.state == ItemState.WAITING.value,
            )
            .values(state=ItemState.PENDING.value, updated_at=_now())
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def claim(
        self, session: AsyncSession, owner: str, limit: int, lease_s: float
    ) -> list[WorkItem]:
        """Takes up to ``limit`` ready items (or items whose lease ran out) for ``owner``."""
        now = _now()
        ready = _ready(now)
        candidates = (
            await session.execute(
                select(work_items.c.run_id, work_items.c.item_id)
                .join(work_runs, work_runs.c.run_id == work_items.c.run_id)
                .where(ready, work_runs.c.cancel_requested.is_(False))
                .order_by(work_items.c.not_before, work_items.c.seq)
                .limit(limit)
                .with_for_update(skip_locked=True, of=work_items)
            )
        ).all()
        claimed: list[WorkItem] = []
        for run_id, item_id in candidates:
            result = await session.execute(
                update(work_items)
                .where(work_items.c.run_id == run_id, work_items.c.item_id == item_id, ready)
                .values(
                    state=ItemState.RUNNING.value,
                    lease_owner=owner,
                    lease_until=now + timedelta(seconds=lease_s),
                    attempts=work_items.c.attempts + 1,
                    updated_at=now,
                )
                .returning(work_items.c.title, work_items.c.payload, work_items.c.attempts)
            )
            row = result.first()
            if row is None:
                continue
            run = await self.get_run(session, run_id)
            assert run is not None
            item = WorkItem(run, item_id, row.title, json.loads(row.payload), int(row.attempts))
            await self.emit(
                session, run, ProgressKind.ITEM_STARTED, item_id=item_id, attempt=item.attempts
            )
            claimed.append(item)
        return claimed

    async def waiting(self, session: AsyncSession) -> int:
        """Items a replica could claim now: the stage's queue depth."""
        statement = (
            select(func.count())
            .select_from(work_items.join(work_runs, work_runs.c.run_id == work_items.c.run_id))
            .where(_ready(_now()), work_runs.c.cancel_requested.is_(False))
        )
        return int((await session.execute(statement)).scalar_one())

    async def _guarded(
        self, session: AsyncSession, item: WorkItem, owner: str, **values: Any
    ) -> bool:
        """Updates the item only while ``owner`` still holds it: a lost lease changes nothing."""
        result = await session.execute(
            update(work_items)
            .where(
                work_items.c.run_id == item.run.run_id,
                work_items.c.item_id == item.item_id,
                work_items.c.state == ItemState.RUNNING.value,
                work_items.c.lease_owner == owner,
            )
            .values(updated_at=_now(), **values)
        )
        return getattr(result, "rowcount", 0) == 1

    async def heartbeat(
        self, session: AsyncSession, item: WorkItem, owner: str, lease_s: float, tokens: int
    ) -> Beat:
        held = await self._guarded(
            session, item, owner, lease_until=_now() + timedelta(seconds=lease_s)
        )
        if not held:
            return Beat.LOST
        run = await self.get_run(session, item.run.run_id)
        if run is not None and run.cancel_requested:
            return Beat.CANCELLED
        await self.emit(
            session,
            item.run,
            ProgressKind.ITEM_HEARTBEAT,
            item_id=item.item_id,
            tokens_so_far=tokens,
        )
        return Beat.HELD

    async def cancel_item(self, session: AsyncSession, item: WorkItem, owner: str) -> bool:
        """The item stops, cancelled (its run was), while ``owner`` still holds it."""
        done = await self._guarded(
            session,
            item,
            owner,
            state=ItemState.CANCELLED.value,
            lease_owner=None,
            lease_until=None,
            error_code=ErrorCode.CANCELLED.value,
            error_message="the run was cancelled",
        )
        if done:
            await self.emit(session, item.run, ProgressKind.ITEM_CANCELLED, item_id=item.item_id)
        return done

    async def succeed(
        self,
        session: AsyncSession,
        item: WorkItem,
        owner: str,
        provenance: Provenance,
        produced: Sequence[PlannedItem] = (),
    ) -> bool:
        done = await self._guarded(
            session,
            item,
            owner,
            state=ItemState.SUCCEEDED.value,
            lease_owner=None,
            lease_until=None,
            error_code=None,
            error_message=None,
        )
        if done:
            await self.emit(
                session,
                item.run,
                ProgressKind.ITEM_SUCCEEDED,
                item_id=item.item_id,
                provenance=provenance,
                produced=list(produced),
                attempt=item.attempts,
            )
        return done

    async def fail(
        self,
        session: AsyncSession,
        item: WorkItem,
        owner: str,
        code: ErrorCode,
        message: str,
        *,
        usage: AttemptUsage | None = None,
    ) -> bool:
        done = await self._guarded(
            session,
            item,
            owner,
            state=ItemState.FAILED.value,
            lease_owner=None,
            lease_until=None,
            error_code=code.value,
            error_message=message[:2000],
        )
        if done:
            await self.emit(
                session,
                item.run,
                ProgressKind.ITEM_FAILED,
                item_id=item.item_id,
                error=ItemError(code=code, message=message[:500]),
                attempt=item.attempts,
                usage=usage,
            )
        return done

    async def postpone(
        self,
        session: AsyncSession,
        item: WorkItem,
        owner: str,
        delay_s: float,
        reason: str,
        *,
        code: ErrorCode = ErrorCode.INTERNAL,
        usage: AttemptUsage | None = None,
    ) -> bool:
        """Back to pending, not before ``delay_s``: other items go on meanwhile."""
        retry_at = _now() + timedelta(seconds=delay_s)
        done = await self._guarded(
            session,
            item,
            owner,
            state=ItemState.PENDING.value,
            lease_owner=None,
            lease_until=None,
            not_before=retry_at,
        )
        if done:
            await self.emit(
                session,
                item.run,
                ProgressKind.ITEM_POSTPONED,
                item_id=item.item_id,
                attempt=item.attempts,
                error=ItemError(code=code, message=reason[:500]),
                retry_at=retry_at,
                usage=usage,
                message=f"attempt {item.attempts} failed ({reason}); retrying in {delay_s:.1f}s",
            )
        return done

    # --- progress ----------------------------------------------------------------------

    async def emit(
        self, session: AsyncSession, run: WorkRun, kind: ProgressKind, **fields: Any
    ) -> None:
        progress = RunProgress(
            run_id=run.run_id, project_id=run.project_id, stage=self.stage, kind=kind, **fields
        )
        envelope = Envelope(
            type=RunProgress.TYPE,
            schema_version=1,
            source=self.source,
            tenant_id=run.tenant_id,
            project_id=run.project_id,
            run_id=run.run_id,
            correlation_id=run.correlation_id,
            causation_id=run.causation_id,
            key=run.run_id,
            data=progress.model_dump(mode="json", exclude_none=True),
        )
        await outbox.enqueue(session, RUNS_PROGRESS.name, envelope)

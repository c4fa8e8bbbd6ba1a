"""The runs of a stage (``cardflow_work_runs``), each change inside the caller's
transaction: open a run (or find it again), give it items, close it, finish it once every
item is done, cancel and retry it. This is the one writer of the runs table; what happens to
the items meanwhile is ``items.py``'s."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Envelope
from contracts.events import Stage
from services.runtime.db import dialect_insert
from services.runtime.work.items import ItemBook
from services.runtime.work.progress import Progress
from services.runtime.work.records import NewItem, RunState, WorkRun, now, read_run
from services.runtime.work.tables import work_runs


def run_row(
    stage: Stage,
    cause: Envelope,
    run_id: str,
    project_id: str,
    *,
    pipeline: bool = False,
    options: dict[str, Any] | None = None,
    scope: list[str] | None = None,
) -> dict[str, Any]:
    """What a run's row says of it and of the message that brought it here first (a
    command, or a cancel ahead of it): its tenant, correlation and cause."""
    return {
        "run_id": run_id,
        "stage": stage.value,
        "project_id": project_id,
        "tenant_id": cause.tenant_id,
        "correlation_id": cause.correlation_id,
        "causation_id": cause.id,
        "pipeline": pipeline,
        "options": json.dumps(options or {}),
        "scope": json.dumps(scope or []),
    }


class RunBook:
    """The runs of one stage."""

    def __init__(self, stage: Stage, progress: Progress, items: ItemBook) -> None:
        self.stage = stage
        self.progress = progress
        self.items = items

    async def _record(
        self, session: AsyncSession, row: dict[str, Any], state: RunState, *, cancelled: bool
    ) -> None:
        """Writes the run's row unless the run is here already."""
        at = now()
        await session.execute(
            dialect_insert(session)(work_runs)
            .values(
                **row,
                state=state.value,
                cancel_requested=cancelled,
                created_at=at,
                finished_at=at if state is RunState.TOMBSTONE else None,
            )
            .on_conflict_do_nothing()
        )

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
        row = run_row(
            self.stage, command, run_id, project_id, pipeline=pipeline, options=options, scope=scope
        )
        await self._record(session, row, RunState.OPEN, cancelled=False)
        # A run cancelled before its command came here: it is this run now, still cancelled
        # (and still the tenant's that cancelled it).
        await session.execute(
            update(work_runs)
            .where(work_runs.c.run_id == run_id, work_runs.c.state == RunState.TOMBSTONE.value)
            .values(
                **{k: v for k, v in row.items() if k not in ("run_id", "tenant_id")},
                state=RunState.FINISHED.value,
            )
        )
        run = await read_run(session, run_id)
        assert run is not None
        return run

    async def add_items(
        self, session: AsyncSession, run: WorkRun, items: Sequence[NewItem]
    ) -> list[NewItem]:
        """Adds the items not already in the run (a redelivered command adds nothing)."""
        new = await self.items.add(session, run, items)
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
        return new

    async def _close(self, session: AsyncSession, run_id: str) -> None:
        await session.execute(
            update(work_runs)
            .where(work_runs.c.run_id == run_id, work_runs.c.state == RunState.OPEN.value)
            .values(state=RunState.CLOSED.value)
        )

    async def close_run(self, session: AsyncSession, run: WorkRun) -> bool:
        """No more items will be added; returns True if that finished the run."""
        await self._close(session, run.run_id)
        return await self.finish_if_done(session, run.run_id)

    async def finish_if_done(self, session: AsyncSession, run_id: str) -> bool:
        """Marks a closed run whose items are all terminal finished (once); True if it did."""
        # Two items of a run ending at once in two transactions would each count the other as
        # still open (PostgreSQL read committed) and the run would never finish. Locking the
        # run row first serialises them: the second one counts after the first has committed.
        await session.execute(
            select(work_runs.c.run_id).where(work_runs.c.run_id == run_id).with_for_update()
        )
        if not await self.items.all_done(session, run_id):
            return False
        result = await session.execute(
            update(work_runs)
            .where(work_runs.c.run_id == run_id, work_runs.c.state == RunState.CLOSED.value)
            .values(state=RunState.FINISHED.value, finished_at=now())
        )
        if getattr(result, "rowcount", 0) != 1:
            return False
        run = await read_run(session, run_id)
        assert run is not None
        await self.progress.stage_finished(session, run)
        created_at = (
            await session.execute(
                select(work_runs.c.created_at).where(work_runs.c.run_id == run_id)
            )
        ).scalar()
        states = await self.items.item_states(session, run_id)
        self.progress.observe_finished(run, states.values(), created_at)
        return True

    async def cancel_run(
        self, session: AsyncSession, control: Envelope, run_id: str, project_id: str
    ) -> None:
        """No item of the run starts from now on; items not started are cancelled at once,
        running ones at their next heartbeat. A run not seen here yet becomes a tombstone.
        Once nothing of the run is running here, the stage reports itself finished."""
        row = run_row(self.stage, control, run_id, project_id)
        await self._record(session, row, RunState.TOMBSTONE, cancelled=True)
        await session.execute(
            update(work_runs).where(work_runs.c.run_id == run_id).values(cancel_requested=True)
        )
        run = await read_run(session, run_id)
        assert run is not None
        await self.items.cancel_unstarted(session, run)
        if run.state is RunState.TOMBSTONE:
            await self.progress.stage_finished(session, run)
            return
        await self._close(session, run_id)
        if not await self.finish_if_done(session, run_id) and await self.items.all_done(
            session, run_id
        ):
            # Finished before the cancel: say so again, the gateway may wait for it.
            await self.progress.stage_finished(session, run)

    async def retry_run(self, session: AsyncSession, run_id: str) -> list[str]:
        """Failed and cancelled items go back to the queue with their attempts reset; the run
        is no longer cancelled. A tombstone is removed: the command that comes opens the run.
        Returns the requeued item ids."""
        run = await read_run(session, run_id)
        if run is None:
            return []
        if run.state is RunState.TOMBSTONE:
            await session.execute(delete(work_runs).where(work_runs.c.run_id == run_id))
            return []
        again = await self.items.requeue_ended(session, run)
        reopened = RunState.CLOSED if again and run.state is RunState.FINISHED else run.state
        await session.execute(
            update(work_runs)
            .where(work_runs.c.run_id == run_id)
            .values(cancel_requested=False, state=reopened.value, finished_at=None)
        )
        if not again and run.state is RunState.FINISHED:
            # Nothing to redo here: the gateway, which forgot which stages were done when
            # the retry began, hears it again.
            await self.progress.stage_finished(session, run)
        return again

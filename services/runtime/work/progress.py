"""What a stage tells about its part of a run: one ``RunProgress`` event per change of an
item or of the run, written to the outbox in the caller's transaction (so what a client sees
never disagrees with what the service did); and how the stage's part ended, for metrics."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Envelope, caused_by
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
from contracts.pipeline import ItemState, RunStatus
from contracts.topics import RUNS_PROGRESS
from services.runtime import metrics, outbox
from services.runtime.work.records import NewItem, WorkItem, WorkRun, now

ERROR_CHARS = 500
"""How much of an error message an event carries."""


def stage_outcome(cancelled: bool, states: Iterable[ItemState]) -> RunStatus:
    """How a stage's part of a run ended, for metrics: cancelled, succeeded (every item),
    failed (none succeeded) or partial."""
    if cancelled:
        return RunStatus.CANCELLED
    states = list(states)
    succeeded = sum(s is ItemState.SUCCEEDED for s in states)
    if succeeded == len(states):
        return RunStatus.SUCCEEDED
    return RunStatus.FAILED if succeeded == 0 else RunStatus.PARTIAL


def seconds_since(start: datetime | None, end: datetime) -> float:
    """Time from ``start`` (naive means UTC: SQLite keeps no zone) to ``end``; 0 if unknown."""
    if start is None:
        return 0.0
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    return max((end - start).total_seconds(), 0.0)


class Progress:
    """The progress events of one stage, emitted by ``source``."""

    def __init__(self, stage: Stage, source: str) -> None:
        self.stage = stage
        self.source = source

    def envelope(self, run: WorkRun, kind: ProgressKind, **fields: Any) -> Envelope:
        """The event, caused by the command that opened the run, keyed by the run."""
        progress = RunProgress(
            run_id=run.run_id, project_id=run.project_id, stage=self.stage, kind=kind, **fields
        )
        return caused_by(
            run,
            type=RunProgress.TYPE,
            schema_version=1,
            source=self.source,
            key=run.run_id,
            data=progress.model_dump(mode="json", exclude_none=True),
        )

    async def emit(
        self, session: AsyncSession, run: WorkRun, kind: ProgressKind, **fields: Any
    ) -> None:
        await outbox.enqueue(session, RUNS_PROGRESS.name, self.envelope(run, kind, **fields))

    # --- the events, one per change ------------------------------------------------------

    async def planned(self, session: AsyncSession, run: WorkRun, items: Sequence[NewItem]) -> None:
        await self.emit(
            session,
            run,
            ProgressKind.ITEMS_PLANNED,
            items=[
                PlannedItem(item_id=i.item_id, title=i.title, planning=i.planning) for i in items
            ],
        )

    async def started(self, session: AsyncSession, item: WorkItem) -> None:
        await self.emit(
            session,
            item.run,
            ProgressKind.ITEM_STARTED,
            item_id=item.item_id,
            attempt=item.attempts,
        )

    async def heartbeat(self, session: AsyncSession, item: WorkItem, tokens: int) -> None:
        await self.emit(
            session,
            item.run,
            ProgressKind.ITEM_HEARTBEAT,
            item_id=item.item_id,
            tokens_so_far=tokens,
        )

    async def succeeded(
        self,
        session: AsyncSession,
        item: WorkItem,
        provenance: Provenance,
        produced: Sequence[PlannedItem],
    ) -> None:
        await self.emit(
            session,
            item.run,
            ProgressKind.ITEM_SUCCEEDED,
            item_id=item.item_id,
            provenance=provenance,
            produced=list(produced),
            attempt=item.attempts,
        )

    async def failed(
        self,
        session: AsyncSession,
        item: WorkItem,
        code: ErrorCode,
        message: str,
        usage: AttemptUsage | None,
    ) -> None:
        await self.emit(
            session,
            item.run,
            ProgressKind.ITEM_FAILED,
            item_id=item.item_id,
            error=ItemError(code=code, message=message[:ERROR_CHARS]),
            attempt=item.attempts,
            usage=usage,
        )

    async def postponed(
        self,
        session: AsyncSession,
        item: WorkItem,
        *,
        code: ErrorCode,
        reason: str,
        delay_s: float,
        retry_at: datetime,
        usage: AttemptUsage | None,
    ) -> None:
        await self.emit(
            session,
            item.run,
            ProgressKind.ITEM_POSTPONED,
            item_id=item.item_id,
            attempt=item.attempts,
            error=ItemError(code=code, message=reason[:ERROR_CHARS]),
            retry_at=retry_at,
            usage=usage,
            message=f"attempt {item.attempts} failed ({reason}); retrying in {delay_s:.1f}s",
        )

    async def cancelled(self, session: AsyncSession, run: WorkRun, item_id: str) -> None:
        await self.emit(session, run, ProgressKind.ITEM_CANCELLED, item_id=item_id)

    async def requeued(self, session: AsyncSession, run: WorkRun, item_id: str) -> None:
        await self.emit(session, run, ProgressKind.ITEM_REQUEUED, item_id=item_id)

    async def stage_finished(self, session: AsyncSession, run: WorkRun) -> None:
        await self.emit(session, run, ProgressKind.STAGE_FINISHED)

    # --- metrics -------------------------------------------------------------------------

    def observe_finished(
        self, run: WorkRun, states: Iterable[ItemState], created_at: datetime | None
    ) -> None:
        """The stage's part of ``run`` took this long and ended so."""
        outcome = stage_outcome(run.cancel_requested, states)
        metrics.STAGE_RUN_DURATION.labels(stage=self.stage.value, outcome=outcome.value).observe(
            seconds_since(created_at, now())
        )

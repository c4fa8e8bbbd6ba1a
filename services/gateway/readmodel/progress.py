"""Projects a run's progress events: one small handler per progress kind, then the run's
log line, its recomputed status and a new version (the ETag clients poll with)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from sqlalchemy import ColumnElement, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Envelope
from contracts.events import ErrorCode, ProgressKind, RunProgress
from contracts.pipeline import PIPELINE, STAGE_NAMES, AnalysisStatus, ItemState
from services.gateway.readmodel import items, runs
from services.gateway.readmodel.items import Announced
from services.gateway.readmodel.tables import cards, run_log
from services.gateway.readmodel.tables import runs as runs_table


@dataclass(frozen=True, slots=True)
class Step:
    """One progress event of a run this read model knows."""

    session: AsyncSession
    run_id: str
    run_stage: str
    """The run's own stage: ``pipeline`` or one stage."""
    progress: RunProgress
    at: datetime

    @property
    def stage(self) -> str:
        """The stage that reported."""
        return self.progress.stage.value

    @property
    def item_id(self) -> str:
        assert self.progress.item_id is not None  # handlers of item kinds only see items
        return self.progress.item_id


Handler = Callable[[Step], Awaitable[bool]]
"""Projects one kind; False when nothing a client sees changed (no log line, no version)."""


async def project_progress(
    session: AsyncSession, envelope: Envelope, on_changed: Callable[[str], None]
) -> None:
    progress = RunProgress.model_validate(envelope.data)
    run = (
        await session.execute(
            select(runs_table.c.run_id, runs_table.c.stage).where(
                runs_table.c.run_id == progress.run_id,
                runs_table.c.tenant_id == envelope.tenant_id,
            )
        )
    ).first()
    if run is None:
        return  # not a run of this read model (or of this tenant): nothing to show
    step = Step(session, run.run_id, run.stage, progress, envelope.time)
    handler = HANDLERS.get(progress.kind)
    applies = handler is not None and (progress.item_id or progress.kind not in _OF_AN_ITEM)
    if applies and handler is not None and not await handler(step):
        return
    if progress.kind is not ProgressKind.ITEM_HEARTBEAT:
        await session.execute(
            insert(run_log).values(
                run_id=run.run_id,
                time=step.at,
                level=level_of(progress),
                service=envelope.source,
                stage=step.stage,
                item_id=progress.item_id,
                message=log_message(progress),
            )
        )
    await runs.touch_run(session, run.run_id, step.at)
    on_changed(run.run_id)


async def _planned(step: Step) -> bool:
    planned = [Announced(p.item_id, p.title, p.planning) for p in step.progress.items]
    await items.announce(step.session, step.run_id, step.stage, planned)
    return True


async def _started(step: Step) -> bool:
    await items.move(
        step.session,
        step.run_id,
        step.stage,
        step.item_id,
        state=ItemState.RUNNING.value,
        started_at=step.at,
        attempts=step.progress.attempt or 1,
        tokens_so_far=0,
    )
    await _card_analysis(
        step, AnalysisStatus.ANALYZING, cards.c.analysis_status != AnalysisStatus.ANALYZED
    )
    return True


async def _heartbeat(step: Step) -> bool:
    tokens = step.progress.tokens_so_far or 0
    await items.beat(step.session, step.run_id, step.stage, step.item_id, tokens)
    return True


async def _succeeded(step: Step) -> bool:
    progress = step.progress
    moved = await items.move(
        step.session,
        step.run_id,
        step.stage,
        step.item_id,
        state=ItemState.SUCCEEDED.value,
        finished_at=step.at,
        provenance=progress.provenance.model_dump_json() if progress.provenance else None,
        error_code=None,
        error_message=None,
    )
    if moved and progress.provenance is not None:
        await runs.add_usage(step.session, step.run_id, progress.provenance)
    following = _next_stage(step.stage)
    if step.run_stage == PIPELINE and following is not None and progress.produced:
        # A pipeline streams: the next stage's items are announced with their parent's
        # success, in its transaction, so that stage cannot look done before they exist.
        children = [Announced(c.item_id, c.title) for c in progress.produced]
        await items.announce(step.session, step.run_id, following, children)
    return True


async def _postponed(step: Step) -> bool:
    # Waiting for its next attempt is not running: out of the banner and the count.
    await items.move(
        step.session,
        step.run_id,
        step.stage,
        step.item_id,
        state=ItemState.PENDING.value,
        started_at=None,
    )
    await runs.add_attempt_usage(step.session, step.run_id, step.progress.usage)
    return True


async def _failed(step: Step) -> bool:
    await runs.add_attempt_usage(step.session, step.run_id, step.progress.usage)
    error = step.progress.error
    await items.move(
        step.session,
        step.run_id,
        step.stage,
        step.item_id,
        state=ItemState.FAILED.value,
        finished_at=step.at,
        error_code=error.code.value if error else ErrorCode.INTERNAL.value,
        error_message=error.message if error else "",
    )
    await _card_analysis(
        step,
        AnalysisStatus.FAILED,
        cards.c.analysis_status != AnalysisStatus.ANALYZED,
        analysis_error=error.message if error else None,
    )
    return True


async def _cancelled(step: Step) -> bool:
    await items.move(
        step.session,
        step.run_id,
        step.stage,
        step.item_id,
        state=ItemState.CANCELLED.value,
        finished_at=step.at,
    )
    await _card_analysis(
        step, AnalysisStatus.PENDING, cards.c.analysis_status == AnalysisStatus.ANALYZING
    )
    return True


async def _requeued(step: Step) -> bool:
    await items.requeue(step.session, step.run_id, step.stage, step.item_id)
    return True


async def _stage_finished(step: Step) -> bool:
    return await runs.stage_finished(step.session, step.run_id, step.stage)


async def _logged(step: Step) -> bool:
    return True


HANDLERS: Mapping[ProgressKind, Handler] = MappingProxyType(
    {
        ProgressKind.ITEMS_PLANNED: _planned,
        ProgressKind.ITEM_STARTED: _started,
        ProgressKind.ITEM_HEARTBEAT: _heartbeat,
        ProgressKind.ITEM_SUCCEEDED: _succeeded,
        ProgressKind.ITEM_POSTPONED: _postponed,
        ProgressKind.ITEM_FAILED: _failed,
        ProgressKind.ITEM_CANCELLED: _cancelled,
        ProgressKind.ITEM_REQUEUED: _requeued,
        ProgressKind.STAGE_FINISHED: _stage_finished,
        ProgressKind.LOG: _logged,
    }
)

_OF_AN_ITEM = frozenset(k for k in ProgressKind if k.value.startswith("item_"))
"""Kinds about one item: without an item id there is nothing to move, only the log line."""


async def _card_analysis(
    step: Step, status: AnalysisStatus, when: ColumnElement[bool], **values: Any
) -> None:
    """An analysis item's card shows where its analysis is; other stages have no card."""
    if step.stage != "analysis":
        return
    await step.session.execute(
        update(cards)
        .where(cards.c.card_id == step.item_id, when)
        .values(analysis_status=status.value, **values)
    )


def _next_stage(stage: str) -> str | None:
    following = STAGE_NAMES[STAGE_NAMES.index(stage) + 1 :]
    return following[0] if following else None


def level_of(progress: RunProgress) -> str:
    if progress.kind is ProgressKind.LOG:
        return progress.level or "info"
    if progress.kind is ProgressKind.ITEM_POSTPONED:
        return "warning"
    return "error" if progress.kind is ProgressKind.ITEM_FAILED else "info"


def log_message(progress: RunProgress) -> str:
    kind, item = progress.kind, progress.item_id
    if kind is ProgressKind.ITEMS_PLANNED:
        return f"{progress.stage.value}: {len(progress.items)} item(s) planned"
    if kind is ProgressKind.ITEM_STARTED:
        return f"{item} started (attempt {progress.attempt or 1})"
    if kind is ProgressKind.ITEM_SUCCEEDED:
        p = progress.provenance
        detail = f" in {p.duration_s:.1f}s via {p.provider}/{p.model}" if p else ""
        return f"{item} succeeded{detail}"
    if kind is ProgressKind.ITEM_FAILED:
        error = progress.error
        return f"{item} failed: {error.code.value}: {error.message}" if error else f"{item} failed"
    if kind is ProgressKind.ITEM_CANCELLED:
        return f"{item} cancelled"
    if kind is ProgressKind.ITEM_POSTPONED:
        return f"{item}: {progress.message or 'attempt failed; retrying later'}"
    if kind is ProgressKind.ITEM_REQUEUED:
        return f"{item} queued again (retry)"
    if kind is ProgressKind.STAGE_FINISHED:
        return f"{progress.stage.value} stage finished"
    return progress.message or kind.value

"""Projects progress and domain events into the read model, idempotently (the runtime's
inbox skips redelivered events) and in order per key (runs, cards, epics, stories).

Every change to a run bumps its version, which is the ETag clients poll with.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Envelope
from contracts.events import (
    CardAnalyzed,
    EpicGenerated,
    ProgressKind,
    RunProgress,
    StoriesGenerated,
    SubtasksGenerated,
)
from services.gateway import runview
from services.gateway.tables import (
    cards,
    epics,
    item_results,
    run_items,
    run_log,
    runs,
    stories,
    subtasks,
)
from services.gateway.watch import RunWatch
from services.runtime import metrics

TERMINAL = runview.TERMINAL


def _now() -> datetime:
    return datetime.now(UTC)


class Projection:
    def __init__(self, watch: RunWatch) -> None:
        self.watch = watch

    # --- progress ----------------------------------------------------------------------

    async def apply_progress(self, session: AsyncSession, envelope: Envelope) -> None:
        progress = RunProgress.model_validate(envelope.data)
        run = (
            await session.execute(
                select(runs.c.run_id, runs.c.stage, runs.c.tenant_id).where(
                    runs.c.run_id == progress.run_id, runs.c.tenant_id == envelope.tenant_id
                )
            )
        ).first()
        if run is None:
            return  # not a run of this read model (or of this tenant): nothing to show
        at = envelope.time
        stage = progress.stage.value
        kind = progress.kind
        if kind is ProgressKind.ITEMS_PLANNED:
            for planned in progress.items:
                await add_item(
                    session,
                    run.run_id,
                    stage,
                    planned.item_id,
                    planned.title,
                    planning=planned.planning,
                )
        elif kind is ProgressKind.ITEM_STARTED and progress.item_id:
            await add_item(session, run.run_id, stage, progress.item_id, progress.item_id)
            await self._move(
                session,
                run.run_id,
                stage,
                progress.item_id,
                state="running",
                started_at=at,
                attempts=progress.attempt or 1,
                tokens_so_far=0,
            )
            if stage == "analysis":
                await session.execute(
                    update(cards)
                    .where(
                        cards.c.card_id == progress.item_id, cards.c.analysis_status != "analyzed"
                    )
                    .values(analysis_status="analyzing")
                )
        elif kind is ProgressKind.ITEM_HEARTBEAT and progress.item_id:
            await session.execute(
                update(run_items)
                .where(_item(run.run_id, stage, progress.item_id), run_items.c.state == "running")
                .values(
                    tokens_so_far=progress.tokens_so_far or 0,
                    updated_at=_now(),
                )
            )
        elif kind is ProgressKind.ITEM_SUCCEEDED and progress.item_id:
            moved = await self._move(
                session,
                run.run_id,
                stage,
                progress.item_id,
                state="succeeded",
                finished_at=at,
                provenance=progress.provenance.model_dump_json() if progress.provenance else None,
                error_code=None,
                error_message=None,
            )
            if moved and progress.provenance is not None:
                await _add_usage(session, run.run_id, progress.provenance.model_dump())
            if run.stage == "pipeline" and progress.produced:
                following = runview.STAGES[runview.STAGES.index(stage) + 1 :]
                if following:
                    for child in progress.produced:
                        await add_item(
                            session, run.run_id, following[0], child.item_id, child.title
                        )
        elif kind is ProgressKind.ITEM_POSTPONED and progress.item_id:
            # Waiting for its next attempt is not running: out of the banner and the count.
            await self._move(
                session, run.run_id, stage, progress.item_id, state="pending", started_at=None
            )
            await _add_attempt_usage(session, run.run_id, progress)
        elif kind is ProgressKind.ITEM_FAILED and progress.item_id:
            await _add_attempt_usage(session, run.run_id, progress)
            error = progress.error
            await self._move(
                session,
                run.run_id,
                stage,
                progress.item_id,
                state="failed",
                finished_at=at,
                error_code=error.code.value if error else "internal",
                error_message=error.message if error else "",
            )
            if stage == "analysis":
                await session.execute(
                    update(cards)
                    .where(
                        cards.c.card_id == progress.item_id, cards.c.analysis_status != "analyzed"
                    )
                    .values(
                        analysis_status="failed", analysis_error=error.message if error else None
                    )
                )
        elif kind is ProgressKind.ITEM_CANCELLED and progress.item_id:
            await self._move(
                session, run.run_id, stage, progress.item_id, state="cancelled", finished_at=at
            )
            if stage == "analysis":
                await session.execute(
                    update(cards)
                    .where(
                        cards.c.card_id == progress.item_id, cards.c.analysis_status == "analyzing"
                    )
                    .values(analysis_status="pending")
                )
        elif kind is ProgressKind.ITEM_REQUEUED and progress.item_id:
            # The one move back a terminal item makes: a retry of the run.
            await session.execute(
                update(run_items)
                .where(
                    _item(run.run_id, stage, progress.item_id),
                    run_items.c.state.in_(("failed", "cancelled")),
                )
                .values(
                    state="pending",
                    started_at=None,
                    finished_at=None,
                    error_code=None,
                    error_message=None,
                    tokens_so_far=0,
                    updated_at=_now(),
                )
            )
        elif kind is ProgressKind.STAGE_FINISHED:
            row = (
                await session.execute(
                    select(runs.c.stages_finished, runs.c.finished_at).where(
                        runs.c.run_id == run.run_id
                    )
                )
            ).one()
            finished = set(json.loads(row.stages_finished))
            finished.add(stage)
            await session.execute(
                update(runs)
                .where(runs.c.run_id == run.run_id)
                .values(stages_finished=json.dumps(sorted(finished)))
            )
            if row.finished_at is not None:
                # A pipeline's streaming stage (stories, subtasks) says it finished once the
                # closing command reached it, which may be after the run was already seen
                # done from its items: nothing a client sees changes, so neither does the
                # run's version (its ETag) or its log.
                return
        if kind is not ProgressKind.ITEM_HEARTBEAT:
            await session.execute(
                insert(run_log).values(
                    run_id=run.run_id,
                    time=at,
                    level=_level(progress),
                    service=envelope.source,
                    stage=stage,
                    item_id=progress.item_id,
                    message=_log_message(progress),
                )
            )
        await touch_run(session, run.run_id, at)
        self.watch.changed(run.run_id)

    async def _move(
        self, session: AsyncSession, run_id: str, stage: str, item_id: str, **values: Any
    ) -> bool:
        """Moves an item forward; a terminal item never moves back (counts only grow)."""
        result = await session.execute(
            update(run_items)
            .where(_item(run_id, stage, item_id), run_items.c.state.not_in(TERMINAL))
            .values(updated_at=_now(), **values)
        )
        return getattr(result, "rowcount", 0) == 1

    # --- domain events -----------------------------------------------------------------

    async def _result_landed(
        self, session: AsyncSession, envelope: Envelope, stage: str, item_id: str
    ) -> None:
        """Records that the result of ``item_id`` (its natural key: card, epic, story id) is
        projected; the run it belongs to may finish now."""
        if envelope.run_id is None:
            return
        known = (
            await session.execute(
                select(runs.c.run_id).where(
                    runs.c.run_id == envelope.run_id, runs.c.tenant_id == envelope.tenant_id
                )
            )
        ).first()
        if known is None:
            return
        landed = await session.execute(
            select(item_results.c.item_id).where(
                item_results.c.run_id == envelope.run_id,
                item_results.c.stage == stage,
                item_results.c.item_id == item_id,
            )
        )
        if landed.first() is None:
            await session.execute(
                insert(item_results).values(
                    run_id=envelope.run_id,
                    stage=stage,
                    item_id=item_id,
                    event_id=envelope.id,
                    landed_at=_now(),
                )
            )
        await touch_run(session, envelope.run_id)
        self.watch.changed(envelope.run_id)

    async def apply_card_analyzed(self, session: AsyncSession, envelope: Envelope) -> None:
        event = CardAnalyzed.model_validate(envelope.data)
        await session.execute(
            update(cards)
            .where(cards.c.card_id == event.card_id, cards.c.tenant_id == envelope.tenant_id)
            .values(
                analysis_status="analyzed",
                analysis=event.analysis.model_dump_json(),
                analysis_version=event.analysis_version,
                analysis_provenance=event.provenance.model_dump_json(),
                analysis_error=None,
            )
        )
        await self._result_landed(session, envelope, "analysis", event.card_id)

    async def apply_epic_generated(self, session: AsyncSession, envelope: Envelope) -> None:
        event = EpicGenerated.model_validate(envelope.data)
        epic = event.epic
        await _upsert(
            session,
            epics,
            "epic_id",
            {
                "epic_id": epic.epic_id,
                "tenant_id": envelope.tenant_id,
                "project_id": epic.project_id,
                "position": epic.order,
                "epic": epic.model_dump_json(),
                "provenance": event.provenance.model_dump_json(),
                "updated_at": _now(),
                "superseded_by": None,
            },
        )
        if event.supersedes:
            # Only the envelope's own tenant and project: an event cannot hide another's epics.
            await session.execute(
                update(epics)
                .where(
                    epics.c.epic_id.in_([e for e in event.supersedes if e != epic.epic_id]),
                    epics.c.tenant_id == envelope.tenant_id,
                    epics.c.project_id == epic.project_id,
                )
                .values(superseded_by=epic.epic_id, updated_at=_now())
            )
        await self._result_landed(session, envelope, "epics", epic.epic_id)

    async def apply_stories_generated(self, session: AsyncSession, envelope: Envelope) -> None:
        event = StoriesGenerated.model_validate(envelope.data)
        keep = [s.story_id for s in event.stories]
        stale = select(stories.c.story_id).where(
            stories.c.epic_id == event.epic_id, stories.c.story_id.not_in(keep)
        )
        # A regenerated epic's set replaces the old one; what is gone takes its subtasks along.
        await session.execute(delete(subtasks).where(subtasks.c.story_id.in_(stale)))
        await session.execute(
            delete(stories).where(
                stories.c.epic_id == event.epic_id, stories.c.story_id.not_in(keep)
            )
        )
        for story in event.stories:
            await _upsert(
                session,
                stories,
                "story_id",
                {
                    "story_id": story.story_id,
                    "tenant_id": envelope.tenant_id,
                    "project_id": event.project_id,
                    "epic_id": event.epic_id,
                    "position": story.order,
                    "story": story.model_dump_json(),
                    "provenance": event.provenance.model_dump_json(),
                    "updated_at": _now(),
                },
            )
        await self._result_landed(session, envelope, "stories", event.epic_id)

    async def apply_subtasks_generated(self, session: AsyncSession, envelope: Envelope) -> None:
        event = SubtasksGenerated.model_validate(envelope.data)
        keep = [s.subtask_id for s in event.subtasks]
        await session.execute(
            delete(subtasks).where(
                subtasks.c.story_id == event.story_id, subtasks.c.subtask_id.not_in(keep)
            )
        )
        for subtask in event.subtasks:
            await _upsert(
                session,
                subtasks,
                "subtask_id",
                {
                    "subtask_id": subtask.subtask_id,
                    "tenant_id": envelope.tenant_id,
                    "project_id": event.project_id,
                    "epic_id": event.epic_id,
                    "story_id": event.story_id,
                    "position": subtask.order,
                    "subtask": subtask.model_dump_json(),
                    "provenance": event.provenance.model_dump_json(),
                    "updated_at": _now(),
                },
            )
        await self._result_landed(session, envelope, "subtasks", event.story_id)


def _item(run_id: str, stage: str, item_id: str) -> Any:
    return and_(
        run_items.c.run_id == run_id, run_items.c.stage == stage, run_items.c.item_id == item_id
    )


async def add_item(
    session: AsyncSession,
    run_id: str,
    stage: str,
    item_id: str,
    title: str,
    *,
    planning: bool = False,
) -> None:
    """Adds a pending item once; a later, better title replaces an id used as placeholder."""
    existing = (
        await session.execute(select(run_items.c.title).where(_item(run_id, stage, item_id)))
    ).first()
    if existing is not None:
        if existing.title == item_id and title != item_id:
            await session.execute(
                update(run_items).where(_item(run_id, stage, item_id)).values(title=title)
            )
        return
    seq = (
        await session.execute(
            select(func.count()).select_from(run_items).where(run_items.c.run_id == run_id)
        )
    ).scalar_one()
    await session.execute(
        insert(run_items).values(
            run_id=run_id,
            stage=stage,
            item_id=item_id,
            seq=int(seq),
            title=title,
            state="pending",
            attempts=0,
            tokens_so_far=0,
            planning=planning,
            updated_at=_now(),
        )
    )


async def _add_usage(session: AsyncSession, run_id: str, provenance: dict[str, Any]) -> None:
    if provenance.get("cached"):
        return  # nothing was spent on a cached answer
    calls = 0 if provenance.get("offline") else int(provenance.get("attempts", 1))
    await session.execute(
        update(runs)
        .where(runs.c.run_id == run_id)
        .values(
            llm_calls=runs.c.llm_calls + calls,
            input_tokens=runs.c.input_tokens + int(provenance.get("input_tokens", 0)),
            output_tokens=runs.c.output_tokens + int(provenance.get("output_tokens", 0)),
            cost_usd=runs.c.cost_usd + float(provenance.get("cost_usd", 0.0)),
        )
    )


async def _add_attempt_usage(session: AsyncSession, run_id: str, progress: RunProgress) -> None:
    """A failed attempt's calls, tokens and cost count in the run's usage too."""
    usage = progress.usage
    if usage is None or not usage.llm_calls:
        return
    await session.execute(
        update(runs)
        .where(runs.c.run_id == run_id)
        .values(
            llm_calls=runs.c.llm_calls + usage.llm_calls,
            input_tokens=runs.c.input_tokens + usage.input_tokens,
            output_tokens=runs.c.output_tokens + usage.output_tokens,
            cost_usd=runs.c.cost_usd + usage.cost_usd,
        )
    )


async def touch_run(session: AsyncSession, run_id: str, at: datetime | None = None) -> None:
    """Recomputes the run's status from its items and bumps its version.

    The run's row is locked first: progress and result events are projected by different
    consumers, and without the lock each could compute the status from a snapshot that misses
    the other's write (both see "running"; the run never finishes). Under READ COMMITTED the
    statements after the lock see what the other committed."""
    row = (
        await session.execute(select(runs).where(runs.c.run_id == run_id).with_for_update())
    ).one()
    facts = await load_facts(session, row)
    status = runview.status(facts)
    running = sum(1 for i in facts.items if i.state == "running")
    values: dict[str, Any] = {
        "status": status,
        "version": runs.c.version + 1,
        "updated_at": _now(),
        "max_running": max(int(row.max_running), running),
    }
    if row.started_at is None and status != "queued":
        values["started_at"] = at or _now()
    if row.finished_at is None and runview.is_finished(facts):
        values["finished_at"] = at or _now()
        _observe_finished(row, status, values["finished_at"])
    await session.execute(update(runs).where(runs.c.run_id == run_id).values(**values))


def _observe_finished(row: Any, status: str, finished_at: datetime) -> None:
    metrics.RUNS_FINISHED.labels(kind=row.stage, status=status).inc()
    created = as_utc(row.created_at)
    finished = as_utc(finished_at)
    if created is not None and finished is not None:
        metrics.RUN_DURATION.labels(kind=row.stage, status=status).observe(
            max((finished - created).total_seconds(), 0.0)
        )


async def load_facts(session: AsyncSession, row: Any) -> runview.RunFacts:
    landed = {
        (r.stage, r.item_id)
        for r in await session.execute(
            select(item_results.c.stage, item_results.c.item_id).where(
                item_results.c.run_id == row.run_id
            )
        )
    }
    items = await session.execute(
        select(run_items).where(run_items.c.run_id == row.run_id).order_by(run_items.c.seq)
    )
    return runview.RunFacts(
        stage=row.stage,
        stages_finished=frozenset(json.loads(row.stages_finished)),
        cancel_requested=bool(row.cancel_requested),
        items=[
            runview.ItemView(
                stage=i.stage,
                item_id=i.item_id,
                title=i.title,
                state=i.state,
                attempts=i.attempts,
                tokens_so_far=i.tokens_so_far,
                started_at=as_utc(i.started_at),
                finished_at=as_utc(i.finished_at),
                error_code=i.error_code,
                error_message=i.error_message,
                result_landed=(i.stage, i.item_id) in landed,
                planning=bool(i.planning),
            )
            for i in items
        ],
    )


def as_utc(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything here is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


async def _upsert(session: AsyncSession, table: Any, key: str, values: dict[str, Any]) -> None:
    result = await session.execute(
        update(table)
        .where(table.c[key] == values[key])
        .values({k: v for k, v in values.items() if k != key})
    )
    if getattr(result, "rowcount", 0) == 0:
        await session.execute(insert(table).values(**values))


def _level(progress: RunProgress) -> str:
    if progress.kind is ProgressKind.LOG:
        return progress.level or "info"
    if progress.kind is ProgressKind.ITEM_POSTPONED:
        return "warning"
    return "error" if progress.kind is ProgressKind.ITEM_FAILED else "info"


def _log_message(progress: RunProgress) -> str:
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

"""A run's row in the read model: its status and version recomputed from its items after
every change, and the LLM usage its items report."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.backlog import Provenance
from contracts.events import AttemptUsage
from contracts.pipeline import ItemState, RunStatus
from services.gateway.readmodel import runview
from services.gateway.readmodel.facts import as_utc, load_facts, now
from services.gateway.readmodel.tables import runs
from services.runtime import metrics


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
    running = sum(1 for i in facts.items if i.state == ItemState.RUNNING)
    values: dict[str, Any] = {
        "status": status,
        "version": runs.c.version + 1,
        "updated_at": now(),
        "max_running": max(int(row.max_running), running),
    }
    if row.started_at is None and status != RunStatus.QUEUED:
        values["started_at"] = at or now()
    if row.finished_at is None and runview.is_finished(facts):
        values["finished_at"] = at or now()
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


async def add_usage(session: AsyncSession, run_id: str, provenance: Provenance) -> None:
    """A succeeded item's calls, tokens and cost; nothing was spent on a cached answer."""
    if provenance.cached:
        return
    calls = 0 if provenance.offline else provenance.attempts
    await _add(
        session,
        run_id,
        calls,
        provenance.input_tokens,
        provenance.output_tokens,
        provenance.cost_usd,
    )


async def add_attempt_usage(session: AsyncSession, run_id: str, usage: AttemptUsage | None) -> None:
    """A failed attempt's calls, tokens and cost count in the run's usage too."""
    if usage is None or not usage.llm_calls:
        return
    await _add(
        session, run_id, usage.llm_calls, usage.input_tokens, usage.output_tokens, usage.cost_usd
    )


async def _add(
    session: AsyncSession,
    run_id: str,
    calls: int,
    input_tokens: int,
    output_tokens: int,
    cost_usd: float,
) -> None:
    await session.execute(
        update(runs)
        .where(runs.c.run_id == run_id)
        .values(
            llm_calls=runs.c.llm_calls + calls,
            input_tokens=runs.c.input_tokens + input_tokens,
            output_tokens=runs.c.output_tokens + output_tokens,
            cost_usd=runs.c.cost_usd + cost_usd,
        )
    )


async def stage_finished(session: AsyncSession, run_id: str, stage: str) -> bool:
    """Records that ``stage`` said it is done; False when the client sees nothing new."""
    row = (
        await session.execute(
            select(runs.c.stages_finished, runs.c.finished_at).where(runs.c.run_id == run_id)
        )
    ).one()
    finished = set(json.loads(row.stages_finished))
    finished.add(stage)
    await session.execute(
        update(runs)
        .where(runs.c.run_id == run_id)
        .values(stages_finished=json.dumps(sorted(finished)))
    )
    # A pipeline's streaming stage (stories, subtasks) says it finished once the closing
    # command reached it, which may be after the run was already seen done from its items:
    # nothing a client sees changes, so neither does the run's version (its ETag) or its log.
    return row.finished_at is None

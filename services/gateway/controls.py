"""Cancel and retry of a run: the read model's side. The stage services do the work when
the control reaches them on ``cardflow.runs.control.v1``; the fleet gate (written before
this, see api.py) stops new LLM calls at once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import root_envelope
from contracts.events import ControlAction, RunControl
from contracts.pipeline import ItemState
from contracts.topics import RUNS_CONTROL
from services.gateway.problems import Problem
from services.gateway.readmodel import runview
from services.gateway.readmodel.runs import touch_run
from services.gateway.readmodel.tables import runs
from services.runtime.outbox import enqueue
from services.runtime.tracing import run_span

SOURCE = "gateway"


def check_cancel(row: Any) -> None:
    if row.status not in runview.ACTIVE_STATUSES:
        raise Problem(
            "run_finished",
            f"Run {row.run_id} is {row.status}: only a queued or running run can be cancelled.",
        )


def check_retry(row: Any, counts: dict[str, int]) -> None:
    if row.status in runview.ACTIVE_STATUSES:
        raise Problem(
            "run_active",
            f"Run {row.run_id} is {row.status}: cancel it or let it finish before a retry.",
        )
    if not counts[ItemState.FAILED] and not counts[ItemState.CANCELLED]:
        raise Problem("nothing_to_retry", f"Run {row.run_id} has no failed or cancelled items.")


async def cancel(session: AsyncSession, row: Any) -> None:
    """Marks the run cancelling and tells every stage service (once: a repeated cancel of a
    cancelling run changes nothing)."""
    if row.cancel_requested:
        return
    await session.execute(
        update(runs).where(runs.c.run_id == row.run_id).values(cancel_requested=True)
    )
    await _send(session, row, ControlAction.CANCEL)
    await touch_run(session, row.run_id)


async def retry(session: AsyncSession, row: Any) -> None:
    """Reopens the run. Which stages are done is forgotten: each stage service says again,
    after requeueing its failed and cancelled items, whether it has work left."""
    await session.execute(
        update(runs)
        .where(runs.c.run_id == row.run_id)
        .values(cancel_requested=False, stages_finished="[]", finished_at=None)
    )
    await _send(session, row, ControlAction.RETRY)
    await touch_run(session, row.run_id)


async def _send(session: AsyncSession, row: Any, action: ControlAction) -> None:
    with run_span(f"run {action.value} requested", row.run_id):
        pass  # the operator's action, in the run's trace
    control = RunControl(run_id=row.run_id, action=action)
    envelope = root_envelope(
        type=RunControl.TYPE,
        schema_version=1,
        source=SOURCE,
        tenant_id=row.tenant_id,
        project_id=row.project_id,
        run_id=row.run_id,
        key=row.run_id,
        data=control.model_dump(mode="json"),
    )
    await enqueue(session, RUNS_CONTROL.name, envelope)

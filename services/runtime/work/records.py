"""What the work queue stores, as Python values: a run and its states, an item of it, a new
item to add, what a heartbeat found; and a run read back from its row."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events import Stage
from contracts.pipeline import TERMINAL_ITEM_STATES, ItemState
from services.runtime.work.tables import work_runs

TERMINAL: tuple[ItemState, ...] = tuple(s for s in ItemState if s in TERMINAL_ITEM_STATES)
"""Succeeded, failed, cancelled: an item in one of these is done with."""


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


def now() -> datetime:
    return datetime.now(UTC)


def run_from_row(row: Any) -> WorkRun:
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


async def read_run(session: AsyncSession, run_id: str) -> WorkRun | None:
    """The run as stored now, or None if it is not here."""
    row = (await session.execute(select(work_runs).where(work_runs.c.run_id == run_id))).first()
    return run_from_row(row) if row else None

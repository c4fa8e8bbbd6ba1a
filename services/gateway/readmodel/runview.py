"""Pure: a run's status and the run object of DESIGN.md, from its items.

A stage is done when its service said so (``stage_finished``) or, for the stages a pipeline
streams (stories, subtasks), when the stage before it is done and all its items are
terminal: their items are created as their parents succeed, so nothing can be added after.
Either way, it is done only once the result of every succeeded item is in the read model:
a client that sees a finished run must find everything it made.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from contracts.events import Stage
from contracts.pipeline import (
    ACTIVE_RUN_STATUSES,
    PIPELINE,
    STAGE_NAMES,
    STREAMED,
    TERMINAL_ITEM_STATES,
    ItemState,
    RunStatus,
    stages_of,
)

STAGES = STAGE_NAMES
TERMINAL = tuple(s.value for s in ItemState if s in TERMINAL_ITEM_STATES)
ACTIVE_STATUSES = tuple(s.value for s in RunStatus if s in ACTIVE_RUN_STATUSES)
COUNT_KEYS = ("total", *(s.value for s in ItemState if s is not ItemState.WAITING))


@dataclass(frozen=True, slots=True)
class ItemView:
    stage: str
    item_id: str
    title: str
    state: str
    attempts: int = 0
    tokens_so_far: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error_code: str | None = None
    error_message: str | None = None
    result_landed: bool = False
    """The item's result event (card analysed, epic, stories, subtasks) has been projected."""
    planning: bool = False
    """It plans its stage's other items (the epics grouping): no result event follows it."""


@dataclass(frozen=True, slots=True)
class RunFacts:
    stage: str
    """analysis | epics | stories | subtasks | pipeline"""
    stages_finished: frozenset[str]
    items: Sequence[ItemView] = field(default_factory=tuple)
    cancel_requested: bool = False


def counts(items: Iterable[ItemView]) -> dict[str, int]:
    out = dict.fromkeys(COUNT_KEYS, 0)
    for item in items:
        out["total"] += 1
        waiting = item.state in (ItemState.WAITING, ItemState.PENDING)
        key = ItemState.PENDING.value if waiting else item.state
        out[key] = out.get(key, 0) + 1
    return out


def stage_done(facts: RunFacts, stage: str) -> bool:
    items = [i for i in facts.items if i.stage == stage]
    if not all(i.state in TERMINAL for i in items):
        return False
    if any(i.state == ItemState.SUCCEEDED and not (i.result_landed or i.planning) for i in items):
        return False
    if stage in facts.stages_finished:
        return True
    if facts.stage != PIPELINE or Stage(stage) not in STREAMED:
        return False
    stages = stages_of(facts.stage)
    return stage_done(facts, stages[stages.index(stage) - 1])


def is_finished(facts: RunFacts) -> bool:
    return all(stage_done(facts, s) for s in stages_of(facts.stage))


def status(facts: RunFacts) -> str:
    """The run object's status: one of ``RunStatus``."""
    total = counts(facts.items)
    if not is_finished(facts):
        if facts.cancel_requested:
            return RunStatus.CANCELLING.value
        started = sum(total[s] for s in (ItemState.RUNNING, *TERMINAL_ITEM_STATES))
        return (RunStatus.RUNNING if started else RunStatus.QUEUED).value
    if total[ItemState.CANCELLED] or facts.cancel_requested:
        return RunStatus.CANCELLED.value
    if total[ItemState.FAILED] and total[ItemState.SUCCEEDED]:
        return RunStatus.PARTIAL.value
    if total[ItemState.FAILED]:
        return RunStatus.FAILED.value
    return RunStatus.SUCCEEDED.value


def eta_seconds(
    items: Sequence[ItemView], now: datetime, concurrency: int, finished: bool
) -> float | None:
    """Remaining work over observed throughput: mean item time * items left / parallelism.

    None until one item has finished (no honest estimate exists before that); 0 when done.
    Streamed stages grow as parents succeed, so the estimate can rise as well as fall.
    """
    if finished:
        return 0.0
    durations = [
        (i.finished_at - i.started_at).total_seconds()
        for i in items
        if i.state == ItemState.SUCCEEDED and i.started_at and i.finished_at
    ]
    if not durations:
        return None
    mean = sum(durations) / len(durations)
    lanes = max(1, concurrency)
    pending = sum(1 for i in items if i.state in (ItemState.WAITING, ItemState.PENDING))
    running_left = sum(
        max(0.0, mean - (now - i.started_at).total_seconds())
        for i in items
        if i.state == ItemState.RUNNING and i.started_at
    )
    return round((pending * mean + running_left) / lanes, 1)


def in_progress(items: Iterable[ItemView], now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "item_id": i.item_id,
            "stage": i.stage,
            "title": i.title,
            "started_at": i.started_at,
            "elapsed_seconds": round((now - i.started_at).total_seconds(), 1)
            if i.started_at
            else 0,
            "tokens_so_far": i.tokens_so_far,
            "attempt": i.attempts,
        }
        for i in items
        if i.state == ItemState.RUNNING
    ]


def errors(items: Iterable[ItemView]) -> list[dict[str, Any]]:
    return [
        {"item_id": i.item_id, "stage": i.stage, "code": i.error_code, "message": i.error_message}
        for i in items
        if i.state == ItemState.FAILED
    ]

"""The work queue of a stage: the one object a stage service holds, made of its parts.

``runs.py`` keeps the runs (open, add items, close, finish, cancel, retry), ``items.py`` the
items (claim, heartbeat, succeed, fail, postpone, cancel, release, states), ``progress.py``
the events every change writes to the outbox in the same transaction, so what a client sees
never disagrees with what the service did. Every operation runs inside the caller's
transaction.
"""

from __future__ import annotations

from contracts.events import Stage
from services.runtime.work.items import ItemBook
from services.runtime.work.progress import Progress, stage_outcome
from services.runtime.work.records import (
    Beat,
    NewItem,
    RunState,
    WorkItem,
    WorkRun,
    read_run,
)
from services.runtime.work.runs import RunBook

__all__ = [
    "Beat",
    "NewItem",
    "RunState",
    "WorkItem",
    "WorkQueue",
    "WorkRun",
    "stage_outcome",
]


class WorkQueue:
    """The queue of one stage in one service. Its operations are its parts' own methods,
    under the names the stages and the runner call them by."""

    def __init__(self, stage: Stage, source: str) -> None:
        self.stage = stage
        self.source = source
        self.progress = Progress(stage, source)
        self.items = ItemBook(self.progress)
        self.runs = RunBook(stage, self.progress, self.items)

        self.get_run = read_run
        self.open_run = self.runs.open_run
        self.add_items = self.runs.add_items
        self.close_run = self.runs.close_run
        self.finish_if_done = self.runs.finish_if_done
        self.cancel_run = self.runs.cancel_run
        self.retry_run = self.runs.retry_run

        self.claim = self.items.claim
        self.heartbeat = self.items.heartbeat
        self.succeed = self.items.succeed
        self.fail = self.items.fail
        self.postpone = self.items.postpone
        self.cancel_item = self.items.cancel_item
        self.reap_cancelled = self.items.reap_cancelled
        self.release = self.items.release
        self.item_states = self.items.item_states
        self.waiting = self.items.waiting

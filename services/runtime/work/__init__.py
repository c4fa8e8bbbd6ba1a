"""Runs and items of a stage: a durable work queue in the service's own database.

A stage's command handler only records a run and its items (fast, inside the Kafka handler);
the ``ItemRunner`` then works the items outside any handler, concurrently up to a limit,
each under a lease and a hard deadline. Kafka's poll loop is therefore never held by an LLM
call, a crash mid-item costs at most one repeated call (the lease expires and the item is
claimed again), and replicas on one PostgreSQL database share the queue.
"""

from contracts.pipeline import ItemState
from services.runtime.work.outcomes import Committed, ItemFailure, StageWorker
from services.runtime.work.queue import WorkQueue
from services.runtime.work.records import Beat, NewItem, WorkItem, WorkRun
from services.runtime.work.runner import ItemRunner

__all__ = [
    "Beat",
    "Committed",
    "ItemFailure",
    "ItemRunner",
    "ItemState",
    "NewItem",
    "StageWorker",
    "WorkItem",
    "WorkQueue",
    "WorkRun",
]

"""The pipeline's shape, declared once: its stages in order, what a run of each takes as its
scope, which command starts it, which stages a pipeline streams, and the states of a run's
items and of the run itself. Data only: the gateway, the stages, the command line and the web
page (served it in the page's configuration) all read it from here.
"""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType
from typing import Final

from contracts.events import Stage
from contracts.topics import (
    ANALYSIS_REQUESTED,
    EPICS_REQUESTED,
    STORIES_REQUESTED,
    SUBTASKS_REQUESTED,
    Topic,
)

PIPELINE: Final = "pipeline"
"""A run of every stage in order, each streaming into the next."""

STAGES: Final[tuple[Stage, ...]] = (Stage.ANALYSIS, Stage.EPICS, Stage.STORIES, Stage.SUBTASKS)
STAGE_NAMES: Final[tuple[str, ...]] = tuple(s.value for s in STAGES)
RUN_STAGES: Final[tuple[str, ...]] = (PIPELINE, *STAGE_NAMES)
"""What ``POST /runs`` accepts as its ``stage``."""

SCOPE: Final = MappingProxyType(
    {
        PIPELINE: "cards",
        Stage.ANALYSIS.value: "cards",
        Stage.EPICS.value: "cards",
        Stage.STORIES.value: "epics",
        Stage.SUBTASKS.value: "stories",
    }
)
"""What a run of each stage is started on (the ids it may name)."""

COMMAND: Final[MappingProxyType[Stage, Topic]] = MappingProxyType(
    {
        Stage.ANALYSIS: ANALYSIS_REQUESTED,
        Stage.EPICS: EPICS_REQUESTED,
        Stage.STORIES: STORIES_REQUESTED,
        Stage.SUBTASKS: SUBTASKS_REQUESTED,
    }
)
"""The command topic that starts each stage."""

STREAMED: Final[frozenset[Stage]] = frozenset({Stage.STORIES, Stage.SUBTASKS})
"""In a pipeline, these stages get their items as their parents succeed: such a stage is
done once the stage before it is done and its own items are all terminal."""


class ItemState(StrEnum):
    WAITING = "waiting"
    """Its input has not arrived yet (counted as pending in a run's counts)."""
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_ITEM_STATES: Final[frozenset[ItemState]] = frozenset(
    {ItemState.SUCCEEDED, ItemState.FAILED, ItemState.CANCELLED}
)


class AnalysisStatus(StrEnum):
    """A card's ``analysis_status`` in the API: pending → analyzing → analyzed | failed."""

    PENDING = "pending"
    ANALYZING = "analyzing"
    ANALYZED = "analyzed"
    FAILED = "failed"


class RunStatus(StrEnum):
    """The run object's ``status`` (DESIGN.md)."""

    QUEUED = "queued"
    RUNNING = "running"
    CANCELLING = "cancelling"
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_RUN_STATUSES: Final[frozenset[RunStatus]] = frozenset(
    {RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.CANCELLING}
)
TERMINAL_RUN_STATUSES: Final[frozenset[RunStatus]] = frozenset(
    {RunStatus.SUCCEEDED, RunStatus.PARTIAL, RunStatus.FAILED, RunStatus.CANCELLED}
)


def stages_of(run_stage: str) -> tuple[str, ...]:
    """The stages a run of ``run_stage`` goes through, in order."""
    return STAGE_NAMES if run_stage == PIPELINE else (run_stage,)


def page_shape() -> dict[str, object]:
    """The shape as the web page is served it (JSON)."""
    return {
        "stages": list(STAGE_NAMES),
        "run_stages": list(RUN_STAGES),
        "scope": dict(SCOPE),
        "item_states": [s.value for s in ItemState],
        "item_state": {s.name: s.value for s in ItemState},
        "run_status": {s.name: s.value for s in RunStatus},
        "terminal_run_statuses": sorted(s.value for s in TERMINAL_RUN_STATUSES),
    }

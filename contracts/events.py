"""Payloads (the envelope's ``data``) of every event and command, with their type names.

A payload is identified by the envelope's ``type`` and ``schema_version``; each is listed in
``contracts.registry`` and gets a committed JSON Schema.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.backlog import CardAnalysis, Epic, Provenance, Requirement, Story, Subtask
from contracts.documents import DocumentContext


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ErrorCode(StrEnum):
    """The only error codes a client sees (DESIGN.md)."""

    LLM_TIMEOUT = "llm_timeout"
    LLM_RATE_LIMITED = "llm_rate_limited"
    LLM_INVALID_OUTPUT = "llm_invalid_output"
    LLM_REFUSED = "llm_refused"
    LLM_CONTEXT_OVERFLOW = "llm_context_overflow"
    LLM_UNAVAILABLE = "llm_unavailable"
    BUDGET_EXCEEDED = "budget_exceeded"
    CANCELLED = "cancelled"
    INPUT_INVALID = "input_invalid"
    INTERNAL = "internal"


class Stage(StrEnum):
    ANALYSIS = "analysis"
    EPICS = "epics"
    STORIES = "stories"
    SUBTASKS = "subtasks"


class SubtaskOptions(_Payload):
    """The old tool's config dialog."""

    min_per_story: int = Field(default=3, ge=1, le=20)
    max_per_story: int = Field(default=6, ge=1, le=20)
    include_tests: bool = True
    include_docs: bool = True

    @model_validator(mode="after")
    def _range(self) -> SubtaskOptions:
        if self.min_per_story > self.max_per_story:
            raise ValueError("min_per_story must not exceed max_per_story")
        return self


class RunOptions(_Payload):
    subtasks: SubtaskOptions = Field(default_factory=SubtaskOptions)
    budget_usd: float | None = Field(default=None, gt=0)


# --- domain events -------------------------------------------------------------------------


class CardSubmitted(_Payload):
    TYPE: ClassVar[str] = "cardflow.card.submitted"
    card_id: str
    project_id: str
    title: str
    body: str
    external_id: str | None = None
    upload_id: str | None = None
    position: int = Field(default=0, ge=0, description="The card's order in its project.")
    document: DocumentContext | None = Field(
        default=None,
        description="What the gateway's document reader found in the card: its heading path, "
        "metadata, glossary, the author's requirements and open questions.",
    )


class CardAnalyzed(_Payload):
    TYPE: ClassVar[str] = "cardflow.card.analyzed"
    card_id: str
    project_id: str
    title: str
    position: int = Field(default=0, ge=0, description="The card's order in its project.")
    analysis: CardAnalysis
    provenance: Provenance
    analysis_version: str = Field(description="Hash of the analysis: epics wait for this one.")


class EpicGenerated(_Payload):
    TYPE: ClassVar[str] = "cardflow.epic.generated"
    epic: Epic
    provenance: Provenance
    supersedes: list[str] = Field(
        default_factory=list,
        description="Epics of an earlier grouping of these cards that the new grouping no "
        "longer has: readers mark them superseded (kept, not shown beside their replacements).",
    )


class StoriesGenerated(_Payload):
    """All stories of one epic: the set replaces the epic's previous stories."""

    TYPE: ClassVar[str] = "cardflow.stories.generated"
    project_id: str
    epic_id: str
    stories: list[Story]
    provenance: Provenance


class SubtasksGenerated(_Payload):
    """All subtasks of one story: the set replaces the story's previous subtasks."""

    TYPE: ClassVar[str] = "cardflow.subtasks.generated"
    project_id: str
    epic_id: str
    story_id: str
    subtasks: list[Subtask]
    provenance: Provenance


# --- commands ------------------------------------------------------------------------------


class AnalysisRequested(_Payload):
    TYPE: ClassVar[str] = "cardflow.analysis.requested"
    run_id: str
    project_id: str
    card_ids: list[str]
    pipeline: bool = Field(description="Go on to epics, stories and subtasks when done.")
    options: RunOptions = Field(default_factory=RunOptions)


class AnalysedCardRef(_Payload):
    card_id: str
    analysis_version: str


class EpicsRequested(_Payload):
    TYPE: ClassVar[str] = "cardflow.epics.requested"
    run_id: str
    project_id: str
    cards: list[AnalysedCardRef] = Field(
        description="The analysed cards in scope; epics start once all these analyses are known."
    )
    pipeline: bool
    options: RunOptions = Field(default_factory=RunOptions)


class StoriesRequested(_Payload):
    """Self-contained: carries the epics, so no service has to wait for another's events."""

    TYPE: ClassVar[str] = "cardflow.stories.requested"
    run_id: str
    project_id: str
    epics: list[Epic]
    pipeline: bool
    complete: bool = Field(
        description="True when no more items of the run will come: a command carrying the "
        "run's whole scope, or, in a pipeline (one command per epic as epics are generated, "
        "complete=false), a last one with no epics once the epics stage is done. A pipeline's "
        "commands are keyed by run id, so the last one arrives after the others."
    )
    options: RunOptions = Field(default_factory=RunOptions)


class StoryInContext(_Payload):
    story: Story
    epic_title: str
    requirements: list[Requirement]


class SubtasksRequested(_Payload):
    TYPE: ClassVar[str] = "cardflow.subtasks.requested"
    run_id: str
    project_id: str
    stories: list[StoryInContext]
    pipeline: bool
    complete: bool = Field(description="As in stories.requested.")
    options: RunOptions = Field(default_factory=RunOptions)


class ControlAction(StrEnum):
    CANCEL = "cancel"
    RETRY = "retry"


class RunControl(_Payload):
    TYPE: ClassVar[str] = "cardflow.run.control"
    run_id: str
    action: ControlAction


# --- progress ------------------------------------------------------------------------------


class ProgressKind(StrEnum):
    ITEMS_PLANNED = "items_planned"
    ITEM_STARTED = "item_started"
    ITEM_HEARTBEAT = "item_heartbeat"
    ITEM_SUCCEEDED = "item_succeeded"
    ITEM_FAILED = "item_failed"
    ITEM_CANCELLED = "item_cancelled"
    ITEM_POSTPONED = "item_postponed"
    """An attempt failed in a way worth retrying: the item waits in the queue until
    ``retry_at`` (backoff, or the provider's Retry-After)."""
    ITEM_REQUEUED = "item_requeued"
    """A retry put a failed or cancelled item back in the queue."""
    STAGE_FINISHED = "stage_finished"
    LOG = "log"


class PlannedItem(_Payload):
    item_id: str
    title: str
    planning: bool = Field(
        default=False,
        description="True for an item whose work is to plan the stage's other items (the "
        "epics stage's grouping of a scope by an LLM): no backlog item comes of it, so no "
        "result event follows its success; the items it plans are announced when it succeeds.",
    )


class ItemError(_Payload):
    code: ErrorCode
    message: str


class AttemptUsage(_Payload):
    """What an attempt that produced nothing still cost (calls made, tokens billed)."""

    llm_calls: int = Field(default=0, ge=0)
    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    cost_usd: float = Field(default=0.0, ge=0)


class RunProgress(_Payload):
    """One step of a run's life, keyed by run id. Which fields are set depends on ``kind``."""

    TYPE: ClassVar[str] = "cardflow.run.progress"
    run_id: str
    project_id: str
    stage: Stage
    kind: ProgressKind
    item_id: str | None = None
    items: list[PlannedItem] = Field(default_factory=list, description="items_planned")
    attempt: int | None = Field(default=None, ge=1)
    tokens_so_far: int | None = Field(default=None, ge=0, description="item_heartbeat")
    provenance: Provenance | None = Field(default=None, description="item_succeeded")
    produced: list[PlannedItem] = Field(
        default_factory=list,
        description="item_succeeded: what the item made that the next stage of a pipeline "
        "works on (an epic, the stories of an epic), so readers can count it at once.",
    )
    error: ItemError | None = Field(default=None, description="item_failed, item_postponed")
    usage: AttemptUsage | None = Field(
        default=None,
        description="item_failed, item_postponed: what the failed attempt cost (a success's "
        "cost is in its provenance)",
    )
    retry_at: datetime | None = Field(default=None, description="item_postponed")
    level: str | None = Field(default=None, description="log: info, warning, error")
    message: str | None = None

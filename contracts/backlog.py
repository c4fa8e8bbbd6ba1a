"""What is generated (DESIGN.md, "What is generated"): the backlog's item models.

Ids are stable (derived from their parents and inputs), so regenerating updates in place.
Every generated item carries its provenance.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    # Tolerant reader: additive changes to a published version break no consumer.
    model_config = ConfigDict(extra="ignore", frozen=True)


class Priority(StrEnum):
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"


class CardKind(StrEnum):
    FEATURE = "feature"
    IMPROVEMENT = "improvement"
    BUG = "bug"
    CHORE = "chore"
    RESEARCH = "research"


class SubtaskKind(StrEnum):
    DEV = "dev"
    TEST = "test"
    DOCS = "docs"
    OPS = "ops"


class Provenance(_Model):
    """Who produced an item, at what cost, and how hard it was."""

    provider: str = Field(description="openai, offline, ...")
    model: str
    prompt_version: str
    offline: bool = Field(description="True when drafted by the offline provider, not an LLM.")
    cached: bool = Field(default=False, description="Served from the result cache: no new call.")
    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    cost_usd: float = Field(default=0.0, ge=0)
    attempts: int = Field(default=1, ge=1)
    repairs: int = Field(default=0, ge=0)
    duration_s: float = Field(default=0.0, ge=0)


class SourceSpan(_Model):
    """Character offsets [start, end) of the text in the card's body it came from."""

    start: int = Field(ge=0)
    end: int = Field(ge=0)


class RequirementKind(StrEnum):
    FUNCTIONAL = "functional"
    NON_FUNCTIONAL = "non_functional"
    CONSTRAINT = "constraint"
    SUCCESS_CRITERION = "success_criterion"


class AcceptanceCriterion(_Model):
    given: str
    when: str
    then: str
    text: str = Field(
        default="",
        description="The author's own wording, when the criterion was written in the document "
        "(a Given/When/Then scenario, an EARS line, a bullet); empty when generated.",
    )


class Requirement(_Model):
    id: str = Field(description="Stable: <card id>:R<n>.")
    text: str
    source_span: SourceSpan
    author_id: str | None = Field(
        default=None, description="The author's own id when the document gives one (FR-01)."
    )
    kind: RequirementKind = RequirementKind.FUNCTIONAL
    author_priority: str | None = Field(
        default=None,
        description="The priority as the author wrote it: P0-P3, MUST/SHOULD/MAY, MoSCoW.",
    )
    priority: Priority | None = Field(
        default=None,
        description="The author's priority on the backlog's scale (P0 and MUST are P1); null "
        "when the author gave none.",
    )
    acceptance_criteria: list[AcceptanceCriterion] = Field(
        default_factory=list, description="The author's own acceptance criteria."
    )
    section: str = Field(
        default="",
        description="The heading (or group, such as a user story) it sits under inside its "
        "card: requirements of one section belong together.",
    )


class OpenQuestion(_Model):
    """A question, TBD or [NEEDS CLARIFICATION] the author left in the card."""

    text: str
    source_span: SourceSpan | None = None


class CardAnalysis(_Model):
    card_id: str
    summary: str
    kind: CardKind
    personas: list[str]
    requirements: list[Requirement]
    priority: Priority
    open_questions: list[str]
    questions: list[OpenQuestion] = Field(
        default_factory=list,
        description="The open questions with where they stand in the card (open_questions "
        "holds their texts).",
    )
    heading_path: list[str] = Field(
        default_factory=list,
        description="The card's place in its document: the headings above it, outermost first.",
    )


class Epic(_Model):
    epic_id: str
    project_id: str
    title: str
    goal: str
    priority: Priority
    order: int = Field(ge=0)
    requirement_ids: list[str]
    card_ids: list[str]
    requirements: list[Requirement] = Field(
        description="The source requirements it covers, so later stages stay grounded in them."
    )


class Story(_Model):
    story_id: str
    epic_id: str
    title: str
    as_a: str
    i_want: str
    so_that: str
    acceptance_criteria: list[AcceptanceCriterion]
    priority: Priority
    estimate_points: int = Field(ge=0)
    requirement_ids: list[str]
    order: int = Field(ge=0)


class Subtask(_Model):
    subtask_id: str
    story_id: str
    title: str
    description: str
    kind: SubtaskKind
    estimate_hours: float = Field(ge=0)
    order: int = Field(ge=0)
    depends_on: list[str] = Field(description="Ids of sibling subtasks that must come first.")

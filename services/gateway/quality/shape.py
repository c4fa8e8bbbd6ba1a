"""The quality report's shape (JSON out, frozen models) and the analysed card it reads."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from contracts.backlog import CardAnalysis, SourceSpan
from services.gateway.quality.thresholds import (
    MAX_STORY_POINTS,
    MAX_SUBTASK_HOURS,
    NEAR_DUPLICATE_SIMILARITY,
)


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class ItemRef(_Out):
    kind: str = Field(description="story, subtask, epic or requirement")
    id: str
    title: str


class StoryRef(_Out):
    story_id: str
    title: str


class RequirementCoverage(_Out):
    requirement_id: str
    author_id: str | None
    text: str
    kind: str
    card_id: str
    card_title: str
    stories: list[StoryRef] = Field(description="The stories that cite it and count.")
    junk_stories: list[StoryRef] = Field(
        default_factory=list, description="Junk stories citing it: they cover nothing."
    )


class CoverageCount(_Out):
    covered: int
    total: int
    share: float | None = Field(description="covered / total; null with no requirement.")


class Untestable(_Out):
    story_id: str
    title: str
    reason: str


class Duplicate(_Out):
    kind: str = Field(description="story or subtask")
    reason: str = Field(description="same_title or similar")
    similarity: float
    story_id: str | None = Field(description="For subtasks: the story they share.")
    items: list[ItemRef]


class JunkItem(_Out):
    kind: str
    id: str
    title: str
    reason: str


class Oversized(_Out):
    kind: str
    id: str
    title: str
    size: float
    unit: str
    limit: float


class QuestionOut(_Out):
    card_id: str
    card_title: str
    text: str
    source_span: SourceSpan | None


class Thresholds(_Out):
    max_story_points: int = MAX_STORY_POINTS
    max_subtask_hours: float = MAX_SUBTASK_HOURS
    near_duplicate_similarity: float = NEAR_DUPLICATE_SIMILARITY


class Counts(_Out):
    cards_analyzed: int
    requirements: int
    requirements_covered: int
    requirements_uncovered: int
    stories: int
    subtasks: int
    stories_untestable: int
    stories_without_requirement: int
    duplicate_groups: int
    duplicates: int = Field(description="Items beyond the first of each duplicate group.")
    junk: int
    junk_by_category: dict[str, int]
    oversized_stories: int
    oversized_subtasks: int
    open_questions: int


class ListWindow(_Out):
    offset: int
    limit: int | None = Field(description="null: every list is whole.")


class QualityReport(_Out):
    project_id: str
    thresholds: Thresholds
    counts: Counts
    coverage: CoverageCount
    window: ListWindow = Field(
        description="Each list below holds at most `limit` entries "
        "from `offset` on; `counts` gives their full lengths."
    )
    requirements: list[RequirementCoverage]
    uncovered: list[RequirementCoverage]
    untestable: list[Untestable]
    stories_without_requirement: list[StoryRef]
    duplicates: list[Duplicate]
    junk: list[JunkItem]
    oversized: list[Oversized]
    open_questions: list[QuestionOut]


# --- inputs ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AnalysedCard:
    card_id: str
    title: str
    analysis: CardAnalysis

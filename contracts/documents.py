"""What the document reader found in a card's text (DESIGN.md, "What is generated": document
reading). It travels with the card (``CardSubmitted.document``) so the analysis stage, its
prompts and the offline provider start from the author's own structure instead of guessing it
again from the text.

Every span is [start, end) character offsets into the card's ``body``.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from contracts.backlog import AcceptanceCriterion, OpenQuestion, RequirementKind, SourceSpan


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class StatementForm(StrEnum):
    """How the author wrote a requirement."""

    USER_STORY = "user_story"
    """As a <role>, I want <goal>, so that <benefit>."""
    EARS = "ears"
    """WHEN / IF / WHILE / WHERE ... THE <system> SHALL ..."""
    MODAL = "modal"
    """An RFC 2119 or plain modal sentence: MUST, SHALL, SHOULD, MAY, needs to."""
    LIST_ITEM = "list_item"
    """A bullet or numbered item of a requirements list."""
    TABLE_ROW = "table_row"
    """A row of a requirements table (an id column or a requirement column)."""
    RECORD = "record"
    """A tracker record (a CSV row, a JSON issue or card)."""


class Term(_Model):
    """A glossary entry: context for prompts, never a requirement."""

    term: str
    definition: str


class UserStoryParts(_Model):
    as_a: str
    i_want: str
    so_that: str = ""


class StatedRequirement(_Model):
    """One requirement as the author wrote it."""

    text: str = Field(description="Plain text: markup stripped, whitespace folded.")
    source_span: SourceSpan
    form: StatementForm
    kind: RequirementKind = RequirementKind.FUNCTIONAL
    author_id: str | None = None
    author_priority: str | None = None
    acceptance_criteria: list[AcceptanceCriterion] = Field(default_factory=list)
    user_story: UserStoryParts | None = None
    section: str = Field(
        default="", description="The heading (or group) it sits under inside the card."
    )


class DocumentContext(_Model):
    """A card's place in its document and what the reader found in it."""

    document: str | None = Field(default=None, description="The uploaded file's name.")
    heading_path: list[str] = Field(
        default_factory=list, description="The headings above the card, outermost first."
    )
    metadata: dict[str, str] = Field(
        default_factory=dict, description="Version, Owner, Status, Date, ...: never requirements."
    )
    terms: list[Term] = Field(default_factory=list)
    context: str = Field(
        default="", description="Introduction or overview text of the document, for prompts."
    )
    requirements: list[StatedRequirement] = Field(default_factory=list)
    questions: list[OpenQuestion] = Field(default_factory=list)

"""What reading a document gathers before any card goes out: the cards being built (their
sections, requirements, questions and notes) and the document's own metadata, terms and
context, which every card of it carries."""

from __future__ import annotations

from dataclasses import dataclass, field

from contracts.backlog import OpenQuestion
from contracts.documents import StatedRequirement, Term
from services.gateway.ingest.blocks import Section

CONTEXT_MAX_CHARS = 1500
TERMS_MAX = 200


@dataclass(slots=True)
class GatheredCard:
    title: str
    path: list[str]
    level: int
    sections: list[Section] = field(default_factory=list)
    requirements: list[StatedRequirement] = field(default_factory=list)
    questions: list[OpenQuestion] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    story_paragraphs: list[int] = field(default_factory=list)
    """Indexes of requirements that are a paragraph's user story (dropped when the card's
    items hold EARS criteria: Kiro's story is the why, its criteria the requirements)."""
    unlisted: list[StatedRequirement] = field(default_factory=list)
    """Its requirements without an author id that sit outside a requirements list (a
    "Product Scope" or "Technical Constraints" bullet): context in a document that ids its
    requirements (``document._only_the_authors_lists``)."""


@dataclass(slots=True)
class GatheredDocument:
    text: str
    file_name: str | None
    metadata: dict[str, str] = field(default_factory=dict)
    terms: list[Term] = field(default_factory=list)
    context: list[str] = field(default_factory=list)

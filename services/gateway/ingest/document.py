"""Markdown and plain-text documents into cards, read as their authors wrote them.

The parser (:mod:`markdown`) gives sections with their blocks and character ranges; each
section's role comes from its heading and the headings above it (:mod:`sections`). Then:

- a card per requirement-bearing section, its heading path kept; a heading that only names a
  part of the section above it ("Acceptance Criteria", "Edge Cases" under a story) is read
  with that section;
- the requirements the author wrote are found block by block: every item of a requirements
  list, id'd lines, rows of a requirements table (id, text, criteria and priority columns),
  a user story's text with its Given/When/Then scenarios as criteria, Kiro's EARS criteria,
  modal sentences of a paragraph (:mod:`statements` reads each);
- front matter and metadata lines (Version, Owner, Status, Input, ...) are document metadata,
  introductions and overviews are context, glossaries are terms, open questions are
  questions, and none of them is a requirement; roadmaps, risks, out-of-scope lists and
  architecture notes state no requirement;
- a document in which nothing reads as a requirement still loses nothing: each section with
  text becomes a card for the analysis stage to read (a headings-only file has no cards).

Here: the sections read into cards (one :class:`SectionReader` per section), and the
fallback. :mod:`section_reader` reads a section's blocks (tables by :mod:`requirement_tables`,
small readings by :mod:`readings`), :mod:`card_drafts` sends the cards out.

Every span is into the card's final body (slices of the normalised document), so the cards
go out exactly as built. Linear on any input: the parser runs its block rules only, every
pattern of the readers is bounded, and inline markup is stripped from bounded strings."""

from __future__ import annotations

from contracts.backlog import OpenQuestion
from contracts.documents import StatedRequirement, StatementForm
from services.gateway.ingest.blocks import ParsedDocument, Section
from services.gateway.ingest.card_drafts import card_drafts
from services.gateway.ingest.gathered import GatheredCard, GatheredDocument
from services.gateway.ingest.headings import heading_name, story_title
from services.gateway.ingest.inline import strip_inline
from services.gateway.ingest.markdown import parse_markdown
from services.gateway.ingest.model import DERIVED_TITLE_CHARS, CardDraft, UploadError, UploadLimits
from services.gateway.ingest.normalise import clean_body, shorten
from services.gateway.ingest.readings import PLAIN_MAX_CHARS
from services.gateway.ingest.section_reader import SectionReader
from services.gateway.ingest.sections import Role, is_part_name, role_of

MAX_LINES = 100_000
MAX_BLOCKS = 50_000
"""What one upload reads at most: far past the 2,000 cards of 20,000 characters an upload can
make, and bounded so a file of 200,000 one-word lines is refused in well under a second."""
IDED_DOCUMENT = 5
"""Requirements with an author id that make a document one that ids its requirements."""


def read_document(
    text: str, *, file_name: str | None, limits: UploadLimits, markdown: bool = True
) -> list[CardDraft]:
    """Every card of a Markdown (or, with ``markdown=False``, plain-text) document, in order
    (positions 0: the caller numbers them)."""
    text = clean_body(text)
    if not text:
        return []
    _check_lines(text)
    parsed = parse_markdown(text, indented_code=markdown)
    blocks = sum(len(section.blocks) for section in parsed.sections)
    if blocks > MAX_BLOCKS:
        raise _too_many(f"{blocks} paragraphs, list items and tables")
    document = GatheredDocument(text, file_name, dict(parsed.metadata))
    cards = _read(parsed, document)
    if not any(card.requirements for card in cards):
        cards = _fallback_cards(parsed, document)
    return list(card_drafts(cards, document, limits))


def _check_lines(text: str) -> None:
    """Refuse before parsing what no card limit could hold (a parse of 200,000 list items
    alone takes seconds of CPU)."""
    lines = text.count("\n") + 1 - text.count("\n\n")
    if lines > MAX_LINES:
        raise _too_many(f"{lines} lines of text")


def _too_many(what: str) -> UploadError:
    return UploadError(
        "too_many_cards",
        f"The file has {what}; one upload reads at most {MAX_LINES} lines and {MAX_BLOCKS} "
        "paragraphs, list items and tables. Split it into several uploads.",
        limit=MAX_BLOCKS,
    )


# --- reading sections -------------------------------------------------------------------------


def _title_index(sections: list[Section]) -> int | None:
    """The document's title: its only level-1 heading when that is the first heading."""
    headed = [index for index, s in enumerate(sections) if s.level > 0]
    level_one = [index for index in headed if sections[index].level == 1]
    if headed and len(level_one) == 1 and level_one[0] == headed[0]:
        return headed[0]
    return None


def _read(parsed: ParsedDocument, document: GatheredDocument) -> list[GatheredCard]:
    sections = parsed.sections
    title_at = _title_index(sections)
    doc_title = heading_name(sections[title_at].title) if title_at is not None else ""
    cards: list[GatheredCard] = []
    open_cards: list[GatheredCard] = []  # the cards of the enclosing headings, outermost first
    pending_questions: list[tuple[Section, list[OpenQuestion]]] = []
    for index, section in enumerate(sections):
        name = heading_name(section.title) if section.level else ""
        path = [heading_name(raw) for raw in section.path]
        names = [n for n in [name, *reversed(path)] if n and n != doc_title]
        role, role_name = role_of(names) if names else (Role.NEUTRAL, "")
        if index == title_at or section.level == 0:
            role = Role.CONTEXT if role is Role.NEUTRAL and index == title_at else role
        while open_cards and open_cards[-1].level >= section.level:
            open_cards.pop()
        parent = open_cards[-1] if open_cards else None
        part_of_parent = (
            parent is not None
            and is_part_name(name)
            and role not in (Role.GLOSSARY, Role.QUESTIONS, Role.SKIP)
        )
        if part_of_parent and parent is not None:
            card = parent
        else:
            title = story_title(name) if role is Role.STORY else name
            card = GatheredCard(
                title or doc_title, [p for p in path if p] + ([name] if name else []), section.level
            )
        reading = SectionReader(document, card, role, role_name, names, section)
        reading.read()
        if role is Role.QUESTIONS and not card.requirements:
            pending_questions.append((section, card.questions))
            continue
        if part_of_parent:
            card.sections.append(section)
            continue
        if (index == title_at or section.level == 0) and not card.requirements:
            continue
        if card.requirements:
            card.sections.append(section)
            # Questions of a section with none of its own travel with the card before them
            # (or, at the start of the document, this first one).
            target = next((c for c in reversed(cards) if c.requirements), card)
            for question_section, questions in pending_questions:
                _attach(target, question_section, questions)
            pending_questions.clear()
            cards.append(card)
            open_cards.append(card)
        elif card.notes and section.level:
            open_cards.append(card)  # its parts may still bring requirements
            card.sections.append(section)
            cards.append(card)
    last = next((c for c in reversed(cards) if c.requirements), None)
    for question_section, questions in pending_questions:
        if last is not None:
            _attach(last, question_section, questions)
    kept = [card for card in cards if card.requirements]
    return [_settled(card) for card in _only_the_authors_lists(kept)]


def _only_the_authors_lists(cards: list[GatheredCard]) -> list[GatheredCard]:
    """An author who gives requirements ids (FR-1.2, NFR-S4, F1.1) ids every one of them,
    so the un-id'd bullets of their other sections (a scope list, "Technical Constraints", a
    browser matrix) restate or surround those: context, not requirements. Bullets of sections
    named as requirement lists, success criteria, user stories and quality sections
    ("Security", "Performance") still count. A card left with no requirement hands its
    questions to the card before it."""
    if sum(1 for card in cards for r in card.requirements if r.author_id) < IDED_DOCUMENT:
        return cards
    kept: list[GatheredCard] = []
    orphaned: list[OpenQuestion] = []
    for card in cards:
        if card.unlisted:
            _drop_unlisted(card)
        if not card.requirements:
            orphaned.extend(card.questions)
            continue
        if orphaned and not kept:
            card.questions[:0] = orphaned
            orphaned = []
        kept.append(card)
    if orphaned and kept:
        kept[-1].questions.extend(orphaned)
    return kept


def _drop_unlisted(card: GatheredCard) -> None:
    unlisted = {id(r) for r in card.unlisted}
    renumbered: dict[int, int] = {}
    requirements: list[StatedRequirement] = []
    for index, requirement in enumerate(card.requirements):
        if id(requirement) in unlisted:
            card.notes.append(requirement.text)
            continue
        renumbered[index] = len(requirements)
        requirements.append(requirement)
    card.requirements = requirements
    card.story_paragraphs = [renumbered[i] for i in card.story_paragraphs if i in renumbered]
    card.unlisted = []


def _attach(card: GatheredCard, section: Section, questions: list[OpenQuestion]) -> None:
    card.sections.append(section)
    card.questions.extend(questions)


def _settled(card: GatheredCard) -> GatheredCard:
    """Kiro's shape: a user-story paragraph beside EARS criteria is the card's why, not one
    more requirement."""
    if card.story_paragraphs and any(r.form is StatementForm.EARS for r in card.requirements):
        dropped = set(card.story_paragraphs)
        for index in sorted(dropped):
            card.notes.insert(0, card.requirements[index].text)
        card.requirements = [r for i, r in enumerate(card.requirements) if i not in dropped]
        card.story_paragraphs = []
    return card


# --- when nothing reads as a requirement --------------------------------------------------------


def _fallback_cards(parsed: ParsedDocument, document: GatheredDocument) -> list[GatheredCard]:
    """Each section with text as a card of its own, for the analysis stage to read (nothing
    the author wrote is dropped because its wording is unusual)."""
    cards: list[GatheredCard] = []
    for section in parsed.sections:
        blocks = [b for b in section.blocks if strip_inline(b.text[:PLAIN_MAX_CHARS])]
        if not blocks:
            continue
        name = heading_name(section.title) if section.level else ""
        title = name or shorten(strip_inline(blocks[0].text[:PLAIN_MAX_CHARS]), DERIVED_TITLE_CHARS)
        card = GatheredCard(
            title.rstrip(".:") or "Card",
            [heading_name(p) for p in section.path] + ([name] if name else []),
            section.level,
        )
        card.sections.append(section)
        cards.append(card)
    return cards

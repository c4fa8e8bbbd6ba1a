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

Every span is into the card's final body (slices of the normalised document), so the cards
go out exactly as built. Linear on any input: the parser runs its block rules only, every
pattern below is bounded, and inline markup is stripped from bounded strings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from contracts.backlog import AcceptanceCriterion, OpenQuestion, RequirementKind, SourceSpan
from contracts.documents import DocumentContext, StatedRequirement, StatementForm, Term
from services.gateway.ingest.blocks import Block, BlockKind, ParsedDocument, Row, Section
from services.gateway.ingest.inline import strip_inline
from services.gateway.ingest.markdown import parse_markdown
from services.gateway.ingest.model import (
    DERIVED_TITLE_CHARS,
    TITLE_MAX_CHARS,
    CardDraft,
    UploadError,
    UploadLimits,
)
from services.gateway.ingest.normalise import clean_body, shorten
from services.gateway.ingest.sections import (
    Role,
    heading_name,
    is_finding_out,
    is_not_now,
    is_part_name,
    is_quality_heading,
    is_quality_list_heading,
    is_strong_requirements_heading,
    role_of,
    story_title,
)
from services.gateway.ingest.statements import (
    author_id_of,
    author_priority_of,
    criteria_from_lines,
    is_author_id,
    is_requirement_sentence,
    is_scenario_line,
    kind_of,
    list_marker_end,
    metadata_of,
    questions_in,
    statement,
    user_story_of,
)

CONTEXT_MAX_CHARS = 1500
TERMS_MAX = 200
MAX_LINES = 100_000
MAX_BLOCKS = 50_000
IDED_DOCUMENT = 5
"""Requirements with an author id that make a document one that ids its requirements."""
"""What one upload reads at most: far past the 2,000 cards of 20,000 characters an upload can
make, and bounded so a file of 200,000 one-word lines is refused in well under a second."""
PLAIN_MAX_CHARS = 4000
"""A block's plain text is read from at most this many characters (a requirement is never
longer; a 5 MB paragraph is not stripped whole)."""

_REQUIREMENT_ROLES = (Role.REQUIREMENTS, Role.SUCCESS, Role.STORY, Role.NEUTRAL)
_CONTEXT_LABELS = frozenset(
    (
        "why this priority",
        "independent test",
        "rationale",
        "note",
        "notes",
        "context",
        "background",
        "description",
        "what it does",
        "current state",
        "current status",
        "example",
        "examples",
        "dependencies",
        "purpose",
        "goal",
        "problem",
        "value",
        "why",
        "impact",
        "user impact",
        "business value",
        "test",
        "how to test",
        "why it's important",
        "why it matters",
        "how it should work",
        "how it will work",
        "how it works",
        "status",
        "threat model",
    )
)
_SUCCESS_LABELS = frozenset(
    ("success criteria", "success criterion", "success metric", "success metrics")
)
_OUT_OF_SCOPE = ("out of scope", "not in scope", "non-goal", "non goal", "won't have", "later")
_CRITERIA_LABELS = frozenset(
    (
        "acceptance scenarios",
        "acceptance criteria",
        "acceptance criterion",
        "scenarios",
        "criteria",
        "definition of done",
        "acceptance tests",
    )
)
_ID_HEADERS = frozenset(("id", "#", "ref", "key", "req", "req id", "requirement id", "no", "nr"))
_TEXT_HEADERS = (
    "description",
    "requirement",
    "statement",
    "feature",
    "capability",
    "criterion",
    "criteria",
    "story",
    "user story",
    "name",
    "title",
    "summary",
    "metric",
    "goal",
)
_CRITERIA_HEADERS = ("acceptance criteria", "acceptance", "criteria", "success criteria")
_PRIORITY_HEADERS = ("priority", "moscow", "prio")
_SENTENCE_END = re.compile(r"[.!?](?=[ \t\n]{1,20}[\"'(*_`A-Z0-9])")
# Several "**Key**: value" pairs on one line (a spec-kit header written on one line).
_METADATA_SPLIT = re.compile(r" \x00 |[ \t]{1,4}(?=\*\*[A-Z][A-Za-z ]{0,30}\*\*:)")
_TERM_SPLIT = re.compile(r"[ \t]{1,3}(?:-|\u2013|\u2014)[ \t]{1,3}")


@dataclass(slots=True)
class _Card:
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
    requirements (``_only_the_authors_lists``)."""


@dataclass(slots=True)
class _Document:
    text: str
    file_name: str | None
    metadata: dict[str, str] = field(default_factory=dict)
    terms: list[Term] = field(default_factory=list)
    context: list[str] = field(default_factory=list)


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
    document = _Document(text, file_name, dict(parsed.metadata))
    cards = _read(parsed, document)
    if not any(card.requirements for card in cards):
        cards = _fallback_cards(parsed, document)
    return list(_drafts(cards, document, limits))


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


def _read(parsed: ParsedDocument, document: _Document) -> list[_Card]:
    sections = parsed.sections
    title_at = _title_index(sections)
    doc_title = heading_name(sections[title_at].title) if title_at is not None else ""
    cards: list[_Card] = []
    open_cards: list[_Card] = []  # the cards of the enclosing headings, outermost first
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
            card = _Card(
                title or doc_title, [p for p in path if p] + ([name] if name else []), section.level
            )
        reading = _SectionReader(document, card, role, role_name, names, section)
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


def _only_the_authors_lists(cards: list[_Card]) -> list[_Card]:
    """An author who gives requirements ids (FR-1.2, NFR-S4, F1.1) ids every one of them,
    so the un-id'd bullets of their other sections (a scope list, "Technical Constraints", a
    browser matrix) restate or surround those: context, not requirements. Bullets of sections
    named as requirement lists, success criteria, user stories and quality sections
    ("Security", "Performance") still count. A card left with no requirement hands its
    questions to the card before it."""
    if sum(1 for card in cards for r in card.requirements if r.author_id) < IDED_DOCUMENT:
        return cards
    kept: list[_Card] = []
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


def _drop_unlisted(card: _Card) -> None:
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


def _attach(card: _Card, section: Section, questions: list[OpenQuestion]) -> None:
    card.sections.append(section)
    card.questions.extend(questions)


def _settled(card: _Card) -> _Card:
    """Kiro's shape: a user-story paragraph beside EARS criteria is the card's why, not one
    more requirement."""
    if card.story_paragraphs and any(r.form is StatementForm.EARS for r in card.requirements):
        dropped = set(card.story_paragraphs)
        for index in sorted(dropped):
            card.notes.insert(0, card.requirements[index].text)
        card.requirements = [r for i, r in enumerate(card.requirements) if i not in dropped]
        card.story_paragraphs = []
    return card


class _SectionReader:
    def __init__(
        self,
        document: _Document,
        card: _Card,
        role: Role,
        role_name: str,
        names: list[str],
        section: Section,
    ) -> None:
        self.document = document
        self.card = card
        self.role = role
        self.names = names
        self.section = section
        self.section_name = names[0] if names else ""
        self.kind_hint = " ".join([role_name, *names])
        self.label = ""
        self.criteria_mode = False
        self.last_top: StatedRequirement | None = None
        self.last_top_is_label = False
        self.later = False
        """Under a label that puts its list later ("**Nice to Have**:", "Stretch:")."""
        self.story_index: int | None = None
        self.section_priority: str | None = None
        self.story_priority: str | None = None
        self.pending_scenarios: list[str] = []
        self.neutral_items = role is Role.NEUTRAL and _lists_requirements(section.blocks)
        self.listed = (
            role in (Role.SUCCESS, Role.STORY)
            or any(is_strong_requirements_heading(name) for name in names)
            or is_quality_list_heading(role_name)
        )
        """The headings name a list of requirements (see ``_only_the_authors_lists``)."""

    # -- dispatch --------------------------------------------------------------------------

    def read(self) -> None:
        if self.role is Role.STORY:
            self.story_priority = author_priority_of(self.section.title[:300])
        for block in self.section.blocks:
            if self._metadata(block):
                continue
            if block.kind is BlockKind.TABLE:
                self._table(block)
            elif self.role is Role.SKIP:
                self._success_line(block)
            elif self.role is Role.CONTEXT:
                self._context(block)
            elif self.role is Role.GLOSSARY:
                self._term(block)
            elif self.role is Role.QUESTIONS:
                self._question(block)
            elif block.kind is BlockKind.ITEM:
                self._item(block)
            else:
                self._paragraph(block)
        self._close_scenarios()

    def _success_line(self, block: Block) -> None:
        """A "**Success Criteria**: ..." line is the author's measurable goal wherever it sits
        (a roadmap phase too), unless the headings put it out of scope or later, or name a
        phase of finding out ("Phase 0: Current State Verification"), whose criteria are
        about the team's knowledge, not the product."""
        if block.kind is not BlockKind.PARAGRAPH or is_not_now(self.names):
            return
        if is_finding_out(self.names):
            return
        label, rest = _label_of(self._plain(block))
        if label in _SUCCESS_LABELS and rest:
            self._add(
                block.text,
                block.start,
                StatementForm.MODAL,
                block,
                kind=RequirementKind.SUCCESS_CRITERION,
            )

    def _metadata(self, block: Block) -> bool:
        """Metadata lines (``**Status**: Draft``; spec-kit puts several on one line,
        separated by ``|``) go to the document, never to requirements."""
        if block.kind is BlockKind.TABLE or block.end - block.start > PLAIN_MAX_CHARS:
            return False
        found: list[tuple[str, str]] = []
        for line in block.text.split("\n"):
            for part in _METADATA_SPLIT.split(line.replace(" | ", " \x00 ")):
                plain = _without_marker(strip_inline(part))
                if not plain:
                    continue
                pair = metadata_of(plain)
                if pair is None or pair[0].lower() == "priority":
                    return False  # a section's "Priority: P0" is its requirements
                found.append(pair)
        known = {key.lower() for key in self.document.metadata}
        for key, value in found:
            if key.lower() not in known:
                self.document.metadata[key] = value
                known.add(key.lower())
        return bool(found)

    # -- blocks ----------------------------------------------------------------------------

    def _plain(self, block: Block) -> str:
        return strip_inline(block.text[:PLAIN_MAX_CHARS])

    def _context(self, block: Block) -> None:
        plain = self._plain(block)
        if plain and sum(len(c) for c in self.document.context) < CONTEXT_MAX_CHARS:
            self.document.context.append(plain)

    def _term(self, block: Block) -> None:
        plain = self._plain(block)
        for line in plain.split("\n"):
            term, definition = _term_of(line)
            if term and len(self.document.terms) < TERMS_MAX:
                self.document.terms.append(Term(term=term, definition=definition))

    def _question(self, block: Block) -> None:
        lead = list_marker_end(block.text) if block.kind is BlockKind.ITEM else 0
        found = questions_in(block.text[lead:PLAIN_MAX_CHARS], block.start + lead)
        if not found:
            plain = self._plain(block)
            if plain and any(c.isalpha() for c in plain):
                rest = block.text[lead:]
                offset = lead + len(rest) - len(rest.lstrip())
                end = block.start + len(block.text.rstrip())
                found = [
                    OpenQuestion(
                        text=_without_marker(plain),
                        source_span=SourceSpan(start=block.start + offset, end=end),
                    )
                ]
        self.card.questions.extend(found)

    def _item(self, block: Block) -> None:
        plain = _without_marker(self._plain(block))
        if block.depth == 0:
            self._close_scenarios()
            if _is_label(plain):
                self.label = plain.rstrip(": ")
                self.later = is_not_now([plain])
                self.last_top, self.last_top_is_label = None, True
                return
            self.last_top_is_label = False
            if self.later:
                self.card.notes.append(plain)
                return
            if self._scenario(block, plain):
                return
            label = _label_of(plain)[0]
            if label in _CONTEXT_LABELS or _not_now(plain):
                self.card.notes.append(plain)
                return
            if self.role is Role.NEUTRAL and not self.neutral_items:
                self._note_or_question(block, plain)
                return
            self.last_top = self._add(block.text, block.start, StatementForm.LIST_ITEM, block)
            return
        # A nested item: a requirement under a label item, else a criterion of its parent.
        if self.later:
            return
        if self._scenario(block, plain):
            return
        if self.last_top_is_label or self.last_top is None:
            self._add(block.text, block.start, StatementForm.LIST_ITEM, block)
        elif plain:
            self._criterion_of_last(AcceptanceCriterion(given="", when="", then=plain, text=plain))

    def _scenario(self, block: Block, plain: str) -> bool:
        """A Given/When/Then line is a criterion of the story or requirement above it; an EARS
        line (``WHEN x THEN the system SHALL y``) is a requirement of its own."""
        if " shall " in f" {plain.lower()} " or not is_scenario_line(block.text[:PLAIN_MAX_CHARS]):
            return False
        if self.story_index is None and self.last_top is None and not self.card.requirements:
            return False
        self.pending_scenarios.append(block.text[:PLAIN_MAX_CHARS])
        return True

    def _close_scenarios(self) -> None:
        if not self.pending_scenarios:
            return
        criteria = criteria_from_lines(self.pending_scenarios)
        self.pending_scenarios = []
        for criterion in criteria:
            self._criterion_of_last(criterion)

    def _criterion_of_last(self, criterion: AcceptanceCriterion) -> None:
        if self.story_index is not None:
            index = self.story_index
        elif self.card.requirements:
            index = len(self.card.requirements) - 1
        else:
            return
        requirement = self.card.requirements[index]
        self.card.requirements[index] = requirement.model_copy(
            update={"acceptance_criteria": [*requirement.acceptance_criteria, criterion]}
        )
        if self.last_top is requirement:
            self.last_top = self.card.requirements[index]

    def _paragraph(self, block: Block) -> None:
        self._close_scenarios()
        plain = self._plain(block)
        if not plain:
            return
        if _is_label(plain):
            # "**Must Have**:" and "**Nice to Have**:" above their lists: the second is later.
            self.later = is_not_now([plain])
        label, rest = _label_of(plain)
        if label in _CRITERIA_LABELS and not rest:
            self.criteria_mode = True
            return
        if label in _CONTEXT_LABELS:
            self.card.notes.append(plain)
            return
        if label == "priority" and rest and len(rest) <= 40:
            # "**Priority:** P0 (Must Have)" above a list or table: its requirements' priority.
            self.section_priority = author_priority_of(plain) or rest
            return
        if self.role is Role.STORY and self.story_index is None and not plain.endswith(":"):
            requirement = self._add(
                block.text,
                block.start,
                StatementForm.LIST_ITEM,
                block,
                priority=self.story_priority,
            )
            if requirement is not None:
                self.story_index = len(self.card.requirements) - 1
            return
        lines = block.text.split("\n")
        if len(lines) > 1 and all(_has_id_lead(line) for line in lines if line.strip()):
            offset = block.start
            for line in lines:
                self._add(line, offset, StatementForm.MODAL, block)
                offset += len(line) + 1
            return
        if _has_id_lead(block.text[:200]):
            self._add(block.text, block.start, StatementForm.MODAL, block)
            return
        found_any = False
        for start, end in _sentences(block.text):
            sentence = block.text[start:end]
            sentence_plain = strip_inline(sentence[:PLAIN_MAX_CHARS])
            if user_story_of(sentence_plain) or is_requirement_sentence(sentence_plain):
                before = len(self.card.requirements)
                self._add(sentence, block.start + start, StatementForm.MODAL, block)
                if user_story_of(sentence_plain) and len(self.card.requirements) > before:
                    self.card.story_paragraphs.append(before)
                found_any = True
        if not found_any:
            self._note_or_question(block, plain)

    def _note_or_question(self, block: Block, plain: str) -> None:
        lead = list_marker_end(block.text) if block.kind is BlockKind.ITEM else 0
        found = questions_in(block.text[lead:PLAIN_MAX_CHARS], block.start + lead)
        if found:
            self.card.questions.extend(found)
        elif plain:
            self.card.notes.append(plain)

    def _table(self, block: Block) -> None:
        header = [strip_inline(h[:200]).lower().strip(" :") for h in block.header]
        if self.role is Role.GLOSSARY:
            for row in block.rows:
                cells = [strip_inline(c.text[:PLAIN_MAX_CHARS]) for c in row.cells]
                if len(cells) >= 2 and cells[0] and len(self.document.terms) < TERMS_MAX:
                    self.document.terms.append(Term(term=cells[0], definition=" ".join(cells[1:])))
            return
        id_column = _column(header, _ID_HEADERS, exact=True)
        if id_column is None and block.rows:
            first = [row.cells[0].text if row.cells else "" for row in block.rows]
            if sum(is_author_id(value) for value in first) * 2 > len(first):
                id_column = 0
        if self.role not in (Role.REQUIREMENTS, Role.SUCCESS, Role.STORY) and id_column is None:
            return
        if self.role is Role.SKIP or self.role is Role.CONTEXT:
            return
        # "| Requirement | Description |" with ids in the first column: the text is the
        # description, never the id column again.
        others = [h if i != id_column else "" for i, h in enumerate(header)]
        text_column = _column(others, _TEXT_HEADERS)
        criteria_column = _column(others, _CRITERIA_HEADERS, exact=True)
        priority_column = _column(others, _PRIORITY_HEADERS)
        for row in block.rows:
            self._row(row, id_column, text_column, criteria_column, priority_column)

    def _row(
        self,
        row: Row,
        id_column: int | None,
        text_column: int | None,
        criteria_column: int | None,
        priority_column: int | None,
    ) -> None:
        cells = [strip_inline(c.text[:PLAIN_MAX_CHARS]) for c in row.cells]
        if not any(cells):
            return
        author_id = cells[id_column] if id_column is not None and id_column < len(cells) else None
        if author_id is not None and not is_author_id(author_id):
            author_id = None
        if author_id is not None and text_column is not None and text_column < len(cells):
            text = cells[text_column]
        else:
            skip = {c for c in (criteria_column, priority_column) if c is not None}
            if author_id is not None and id_column is not None:
                skip.add(id_column)
            text = " ".join(c for i, c in enumerate(cells) if c and i not in skip)
        criteria = []
        if criteria_column is not None and criteria_column < len(cells) and cells[criteria_column]:
            value = cells[criteria_column]
            criteria = [AcceptanceCriterion(given="", when="", then=value, text=value)]
        priority = (
            cells[priority_column]
            if priority_column is not None and priority_column < len(cells)
            else None
        ) or self.section_priority
        found = statement(
            text,
            row.start,
            form=StatementForm.TABLE_ROW,
            section=self.section_name,
            author_id=author_id,
            author_priority=priority or None,
            criteria=criteria,
        )
        if found is None:
            return
        found = found.model_copy(
            update={
                "source_span": SourceSpan(start=row.start, end=max(row.start, row.end)),
                "kind": self._kind(found),
            }
        )
        self._keep(found)

    # -- a requirement ---------------------------------------------------------------------

    def _add(
        self,
        raw: str,
        start: int,
        form: StatementForm,
        block: Block,
        *,
        priority: str | None = None,
        kind: RequirementKind | None = None,
    ) -> StatedRequirement | None:
        if len(raw) > PLAIN_MAX_CHARS:
            raw = raw[:PLAIN_MAX_CHARS]
        section = self.section_name if not self.label else f"{self.section_name}: {self.label}"
        found = statement(raw, start, form=form, section=section, author_priority=priority)
        if found is not None and _is_void(found.text):
            self.card.notes.append(found.text)
            return None
        if found is not None and found.author_priority is None and self.section_priority:
            found = found.model_copy(update={"author_priority": self.section_priority})
        if found is None:
            self._note_or_question(block, strip_inline(raw))
            return None
        found = found.model_copy(update={"kind": kind or self._kind(found)})
        self._keep(found)
        self.card.questions.extend(
            q for q in questions_in(raw, start) if "clarification" in raw.lower()
        )
        return found

    def _keep(self, found: StatedRequirement) -> None:
        self.card.requirements.append(found)
        if found.author_id is None and not self.listed:
            self.card.unlisted.append(found)

    def _kind(self, found: StatedRequirement) -> RequirementKind:
        if self.role is Role.SUCCESS:
            return RequirementKind.SUCCESS_CRITERION
        if (found.author_id or "").upper().startswith(("FR-", "FR_", "FR ")) or (
            (found.author_id or "").upper()[:2] == "FR" and (found.author_id or "")[2:3].isdigit()
        ):
            return RequirementKind.FUNCTIONAL  # the author's own word for it
        if found.kind is not RequirementKind.FUNCTIONAL:
            return found.kind
        if any(is_quality_heading(name) for name in self.names):
            return RequirementKind.NON_FUNCTIONAL
        return kind_of(found.text, author_id=found.author_id, section=self.kind_hint)


# --- small readings ---------------------------------------------------------------------------


def _lists_requirements(blocks: list[Block]) -> bool:
    """A list under a heading that names nothing is a requirements list when one of its items
    reads as one (a modal, a user story, an EARS line or the author's id)."""
    for block in blocks:
        if block.kind is BlockKind.ITEM and block.end - block.start <= PLAIN_MAX_CHARS:
            plain = _without_marker(strip_inline(block.text))
            if author_id_of(plain)[0] or is_requirement_sentence(plain):
                return True
    return False


def _without_marker(plain: str) -> str:
    """An item's plain text without its list marker ("- ", "1. ", "[ ] ")."""
    stripped = plain.lstrip()
    for marker in ("- ", "* ", "+ "):
        if stripped.startswith(marker):
            stripped = stripped[2:].lstrip()
            break
    else:
        digits = len(stripped) - len(stripped.lstrip("0123456789"))
        if 0 < digits <= 9 and stripped[digits : digits + 1] in (".", ")"):
            stripped = stripped[digits + 1 :].lstrip()
    if stripped.startswith(("[ ] ", "[x] ", "[X] ")):
        stripped = stripped[4:]
    return stripped


_VOID = ("not applicable", "n/a", "none", "no direct impact", "not relevant", "nothing")


def _is_void(text: str) -> bool:
    """ "Scalability: Not applicable. Each trainee runs their own clone": the author says
    there is no requirement here."""
    _, colon, rest = text.partition(":")
    value = (rest if colon else text).strip(" .").lower()
    return any(
        value == word or (value.startswith(word) and not value[len(word)].isalnum())
        for word in _VOID
    )


_LATER_ENDINGS = (", later.", ", later", "(later)", "(later).", "in a later release.")


def _not_now(plain: str) -> bool:
    """An item the author puts out of scope or later ("Out of scope: ...", "It would be nice
    to have a forecast, later.")."""
    lower = plain[:300].lower().rstrip()
    return (
        lower.startswith(_OUT_OF_SCOPE)
        or lower.startswith(("it would be nice", "nice to have", "nice-to-have"))
        or lower.endswith(_LATER_ENDINGS)
    )


def _is_label(plain: str) -> bool:
    """An item that only introduces the items under it ("Performance:")."""
    return plain.endswith(":") and len(plain) <= 80 and "." not in plain[:-1]


def _label_of(plain: str) -> tuple[str, str]:
    key, colon, rest = plain.partition(":")
    if not colon or len(key) > 40:
        return "", plain
    return " ".join(key.lower().split()), rest.strip()


def _has_id_lead(line: str) -> bool:
    return author_id_of(strip_inline(_without_marker(line[:200])))[0] is not None


def _term_of(line: str) -> tuple[str, str]:
    """``Term: definition`` or ``Term - definition``; ("", "") when the line is neither."""
    line = _without_marker(line.strip())
    key, colon, rest = line.partition(":")
    if colon and 0 < len(key) <= 80:
        return key.strip(), rest.strip()
    match = _TERM_SPLIT.search(line[:200])
    if match:
        return line[: match.start()].strip(), line[match.end() :].strip()
    return "", ""


def _column(
    header: list[str], names: tuple[str, ...] | frozenset[str], *, exact: bool = False
) -> int | None:
    for index, cell in enumerate(header):
        if cell in names:
            return index
    if exact:
        return None
    for name in names:
        for index, cell in enumerate(header):
            if name in cell:
                return index
    return None


def _sentences(text: str) -> Iterator[tuple[int, int]]:
    """Sentence ranges of a paragraph (at most its first :data:`PLAIN_MAX_CHARS`)."""
    text = text[:PLAIN_MAX_CHARS]
    start = 0
    for match in _SENTENCE_END.finditer(text):
        end = match.end()
        if text[start:end].strip():
            yield start + (len(text[start:end]) - len(text[start:end].lstrip())), end
        start = end
    if text[start:].strip():
        yield start + (len(text[start:]) - len(text[start:].lstrip())), len(text.rstrip())


# --- when nothing reads as a requirement --------------------------------------------------------


def _fallback_cards(parsed: ParsedDocument, document: _Document) -> list[_Card]:
    """Each section with text as a card of its own, for the analysis stage to read (nothing
    the author wrote is dropped because its wording is unusual)."""
    cards: list[_Card] = []
    for section in parsed.sections:
        blocks = [b for b in section.blocks if strip_inline(b.text[:PLAIN_MAX_CHARS])]
        if not blocks:
            continue
        name = heading_name(section.title) if section.level else ""
        title = name or shorten(strip_inline(blocks[0].text[:PLAIN_MAX_CHARS]), DERIVED_TITLE_CHARS)
        card = _Card(
            title.rstrip(".:") or "Card",
            [heading_name(p) for p in section.path] + ([name] if name else []),
            section.level,
        )
        card.sections.append(section)
        cards.append(card)
    return cards


# --- cards out ---------------------------------------------------------------------------------


def _drafts(cards: list[_Card], document: _Document, limits: UploadLimits) -> Iterator[CardDraft]:
    context = " ".join(document.context)
    for card in cards:
        if not card.title:
            first = card.requirements[0].text if card.requirements else ""
            card.title = shorten(first, DERIVED_TITLE_CHARS).rstrip(".:") or "Card"
        for part, (body, requirements, questions) in enumerate(_bodies(card, document, limits)):
            title = card.title if part == 0 else f"{card.title} (part {part + 1})"
            notes = " ".join(card.notes)
            yield CardDraft(
                title=shorten(title, TITLE_MAX_CHARS) or "Card",
                body=body,
                external_id=None,
                position=0,
                document=DocumentContext(
                    document=document.file_name,
                    heading_path=card.path,
                    metadata=document.metadata,
                    terms=document.terms,
                    context=shorten(" ".join(p for p in (notes, context) if p), CONTEXT_MAX_CHARS),
                    requirements=requirements,
                    questions=questions,
                ),
            )


def _bodies(
    card: _Card, document: _Document, limits: UploadLimits
) -> Iterator[tuple[str, list[StatedRequirement], list[OpenQuestion]]]:
    """The card's body from its sections' text (one card, or parts when over the card limit),
    with every span moved from the document into the body."""
    budget = max(limits.max_card_chars - len(card.title) - 20, 1000)
    pieces = list(_pieces(card, document.text, budget, limits))
    body = ""
    moves: list[tuple[int, int, int]] = []  # (doc start, doc end, body start)
    for start, end in pieces:
        chunk = document.text[start:end].rstrip()
        if not chunk.strip():
            continue
        if body and len(body) + 2 + len(chunk) > budget:
            yield _moved(body, moves, card)
            body, moves = "", []
        if body:
            body += "\n\n"
        moves.append((start, start + len(chunk), len(body)))
        body += chunk
    if body:
        yield _moved(body, moves, card)


def _pieces(card: _Card, text: str, budget: int, limits: UploadLimits) -> Iterator[tuple[int, int]]:
    """The document ranges of the card's sections, each cut before the block that would take
    it past ``budget``; a single block longer than that is refused."""
    for section in card.sections:
        start, end = section.start, section.end
        if end - start <= budget:
            yield start, end
            continue
        cut = start
        for block in section.blocks:
            if block.end - block.start > budget:
                line = text.count("\n", 0, block.start) + 1
                raise UploadError(
                    "card_too_long",
                    f"The text at line {line} (under {card.title or 'the first heading'!r}) "
                    f"is one block of {block.end - block.start} characters; the limit is "
                    f"{limits.max_card_chars} per card. Split it into paragraphs.",
                    limit=limits.max_card_chars,
                    line=line,
                    card_title=card.title,
                    length=block.end - block.start,
                )
            if block.end - cut > budget and block.start > cut:
                yield cut, block.start
                cut = block.start
        yield cut, end


def _moved(
    body: str, moves: list[tuple[int, int, int]], card: _Card
) -> tuple[str, list[StatedRequirement], list[OpenQuestion]]:
    def place(span: SourceSpan) -> SourceSpan | None:
        for doc_start, doc_end, body_start in moves:
            if doc_start <= span.start and span.end <= doc_end:
                shift = body_start - doc_start
                return SourceSpan(start=span.start + shift, end=span.end + shift)
        return None

    requirements = []
    for requirement in card.requirements:
        span = place(requirement.source_span)
        if span is not None:
            requirements.append(requirement.model_copy(update={"source_span": span}))
    questions = []
    for question in card.questions:
        span = place(question.source_span) if question.source_span is not None else None
        if span is not None:
            questions.append(question.model_copy(update={"source_span": span}))
    return body, requirements, questions

"""One section read block by block into the card it belongs to: its requirements (list
items, id'd lines, a story's text with its scenarios, modal sentences, table rows), its
questions and notes, and the metadata, terms and context it gives the document."""

from __future__ import annotations

import re

from contracts.backlog import AcceptanceCriterion, OpenQuestion, RequirementKind, SourceSpan
from contracts.documents import StatedRequirement, StatementForm, Term
from services.gateway.ingest.blocks import Block, BlockKind, Section
from services.gateway.ingest.gathered import (
    CONTEXT_MAX_CHARS,
    TERMS_MAX,
    GatheredCard,
    GatheredDocument,
)
from services.gateway.ingest.inline import strip_inline
from services.gateway.ingest.readings import (
    CONTEXT_LABELS,
    CRITERIA_LABELS,
    PLAIN_MAX_CHARS,
    SUCCESS_LABELS,
    has_id_lead,
    is_label,
    is_void,
    label_of,
    lists_requirements,
    not_now,
    sentences,
    term_of,
    without_marker,
)
from services.gateway.ingest.requirement_tables import (
    glossary_terms,
    row_requirement,
    table_columns,
)
from services.gateway.ingest.sections import (
    Role,
    is_finding_out,
    is_not_now,
    is_quality_heading,
    is_quality_list_heading,
    is_strong_requirements_heading,
)
from services.gateway.ingest.statements.forms import is_requirement_sentence, user_story_of
from services.gateway.ingest.statements.kinds import kind_of
from services.gateway.ingest.statements.priorities import author_priority_of
from services.gateway.ingest.statements.questions import questions_in
from services.gateway.ingest.statements.scenarios import (
    criteria_from_lines,
    is_scenario_line,
    list_marker_end,
)
from services.gateway.ingest.statements.stated_requirement import metadata_of, statement

# Several "**Key**: value" pairs on one line (a spec-kit header written on one line).
_METADATA_SPLIT = re.compile(r" \x00 |[ \t]{1,4}(?=\*\*[A-Z][A-Za-z ]{0,30}\*\*:)")


class SectionReader:
    """Reads one section's blocks into ``card`` and ``document``; see :meth:`read`."""

    def __init__(
        self,
        document: GatheredDocument,
        card: GatheredCard,
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
        self.neutral_items = role is Role.NEUTRAL and lists_requirements(section.blocks)
        self.listed = (
            role in (Role.SUCCESS, Role.STORY)
            or any(is_strong_requirements_heading(name) for name in names)
            or is_quality_list_heading(role_name)
        )
        """The headings name a list of requirements (see ``document._only_the_authors_lists``)."""

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
        label, rest = label_of(self._plain(block))
        if label in SUCCESS_LABELS and rest:
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
                plain = without_marker(strip_inline(part))
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
            term, definition = term_of(line)
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
                        text=without_marker(plain),
                        source_span=SourceSpan(start=block.start + offset, end=end),
                    )
                ]
        self.card.questions.extend(found)

    def _item(self, block: Block) -> None:
        plain = without_marker(self._plain(block))
        if block.depth == 0:
            self._close_scenarios()
            if is_label(plain):
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
            label = label_of(plain)[0]
            if label in CONTEXT_LABELS or not_now(plain):
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
        if is_label(plain):
            # "**Must Have**:" and "**Nice to Have**:" above their lists: the second is later.
            self.later = is_not_now([plain])
        label, rest = label_of(plain)
        if label in CRITERIA_LABELS and not rest:
            self.criteria_mode = True
            return
        if label in CONTEXT_LABELS:
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
        if len(lines) > 1 and all(has_id_lead(line) for line in lines if line.strip()):
            offset = block.start
            for line in lines:
                self._add(line, offset, StatementForm.MODAL, block)
                offset += len(line) + 1
            return
        if has_id_lead(block.text[:200]):
            self._add(block.text, block.start, StatementForm.MODAL, block)
            return
        found_any = False
        for start, end in sentences(block.text):
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
        if self.role is Role.GLOSSARY:
            for term in glossary_terms(block):
                if len(self.document.terms) >= TERMS_MAX:
                    break
                self.document.terms.append(term)
            return
        columns = table_columns(block)
        if self.role not in (Role.REQUIREMENTS, Role.SUCCESS, Role.STORY) and columns.id is None:
            return
        if self.role is Role.SKIP or self.role is Role.CONTEXT:
            return
        for row in block.rows:
            found = row_requirement(
                row,
                columns,
                section=self.section_name,
                section_priority=self.section_priority,
            )
            if found is not None:
                self._keep(found.model_copy(update={"kind": self._kind(found)}))

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
        if found is not None and is_void(found.text):
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

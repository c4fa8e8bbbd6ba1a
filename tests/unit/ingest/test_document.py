"""Markdown and plain-text uploads read as their authors wrote them (ingest/document.py):
sections and heading paths, metadata, glossaries, user stories, id'd requirements, requirement
tables, Kiro's EARS criteria, open questions, sections that state no requirement, prose,
spans, plain text, the card limit, and linear time on hostile input.

Every excerpt is a few lines in the style of a real document shape (spec-kit spec.md, Kiro
requirements.md, a BMAD PRD, a Taskmaster PRD, a prose PRD); every reading goes through
:func:`split_upload`, as the upload route does, and every span it gives is checked against
the card body it points into (:func:`check_spans`).
"""

from __future__ import annotations

import multiprocessing
import re

import pytest

from contracts.backlog import AcceptanceCriterion, RequirementKind, SourceSpan
from contracts.documents import StatedRequirement, StatementForm, Term
from services.gateway.ingest import CardDraft, UploadError, UploadLimits, split_upload
from services.gateway.problems import PROBLEMS

MB = 1024 * 1024

# --- helpers ---------------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def _contains_run(haystack: list[str], needle: list[str]) -> bool:
    """``needle`` occurs in ``haystack`` as a contiguous run of words."""
    if not needle:
        return False
    width = len(needle)
    return any(haystack[i : i + width] == needle for i in range(len(haystack) - width + 1))


def check_spans(cards: list[CardDraft]) -> None:
    """Every requirement and question span of every card is a non-empty slice of that card's
    body whose words hold the requirement's (or question's) words, in order, as one run."""
    for card in cards:
        assert card.document is not None, card.title
        found: list[tuple[str, str, SourceSpan | None]] = [
            ("requirement", r.text, r.source_span) for r in card.document.requirements
        ]
        found += [("question", q.text, q.source_span) for q in card.document.questions]
        for what, text, span in found:
            assert span is not None, f"{what} {text!r} of {card.title!r} has no span"
            assert 0 <= span.start < span.end <= len(card.body), (what, text, span)
            sliced = card.body[span.start : span.end]
            assert sliced.strip(), (what, text, span)
            assert _contains_run(_words(sliced), _words(text)), (
                f"{what} {text!r} of {card.title!r}: its span gives {sliced!r}"
            )


def read(text: str, name: str = "spec.md", **limits: int) -> list[CardDraft]:
    """The cards of an upload, their spans checked."""
    cards = split_upload(name, None, text.encode("utf-8"), UploadLimits(**limits))
    check_spans(cards)
    return cards


def refused(text: str, name: str = "spec.md", **limits: int) -> UploadError:
    with pytest.raises(UploadError) as caught:
        split_upload(name, None, text.encode("utf-8"), UploadLimits(**limits))
    error = caught.value
    assert error.status == PROBLEMS[error.code].status
    return error


def requirements(card: CardDraft) -> list[StatedRequirement]:
    assert card.document is not None
    return card.document.requirements


def spanned(card: CardDraft, requirement: StatedRequirement) -> str:
    return card.body[requirement.source_span.start : requirement.source_span.end]


def all_requirement_texts(cards: list[CardDraft]) -> list[str]:
    return [r.text for card in cards for r in requirements(card)]


# --- 1. sections and heading paths -----------------------------------------------------------

BMAD_PRD = """\
# Product Requirements Document - bmad_demo

bmad_demo is a self-hosted training portal that teaches engineers to ship with AI agents.

## Functional Requirements

### FR-1: Curriculum Navigation

- **FR-1.1:** A trainee can land at the portal home page and see three audience entry points.
- **FR-1.2:** A trainee can navigate through the six lessons in order.

### FR-2: Trainee Progress State

- **FR-2.1:** A trainee can mark a lesson as complete and see that state on later visits.
"""


def test_a_card_per_requirement_section_with_its_heading_path_and_the_intro_as_context() -> None:
    cards = read(BMAD_PRD, "prd.md")
    title, group = "Product Requirements Document - bmad_demo", "Functional Requirements"
    assert [(c.title, c.document.heading_path if c.document else None) for c in cards] == [
        ("FR-1: Curriculum Navigation", [title, group, "FR-1: Curriculum Navigation"]),
        ("FR-2: Trainee Progress State", [title, group, "FR-2: Trainee Progress State"]),
    ]
    assert [c.position for c in cards] == [0, 1]
    assert cards[1].body == (
        "### FR-2: Trainee Progress State\n\n"
        "- **FR-2.1:** A trainee can mark a lesson as complete and see that state on later visits."
    )
    assert [[(r.author_id, r.text) for r in requirements(c)] for c in cards] == [
        [
            (
                "FR-1.1",
                "A trainee can land at the portal home page and see three audience entry points.",
            ),
            ("FR-1.2", "A trainee can navigate through the six lessons in order."),
        ],
        [("FR-2.1", "A trainee can mark a lesson as complete and see that state on later visits.")],
    ]
    intro = (
        "bmad_demo is a self-hosted training portal that teaches engineers to ship with AI agents."
    )
    for card in cards:
        assert card.document is not None
        assert card.document.context == intro
        assert card.document.document == "prd.md"
    assert not any("self-hosted" in t for t in all_requirement_texts(cards))


def test_a_headings_only_file_is_refused_no_cards() -> None:
    error = refused("# Trail Tracker PRD\n\n## Functional Requirements\n\n### Offline Mode\n")
    assert error.code == "no_cards"


# --- 2. front matter and metadata lines ------------------------------------------------------

SPEC_KIT_HEADER = """\
---
title: One-page checkout
owner: Dana Whitfield
---

# Feature Specification: One-Page Checkout

**Feature Branch**: `004-one-page-checkout`
**Created**: 2025-11-02
**Status**: Draft
**Input**: User description: "Customers must be able to pay on one page without an account."

**Version**: 1.2 **Author**: Payments team **Last Updated**: 2025-11-20

## Requirements

**Reviewers**: Sam Ortiz | **Release**: 2026.1

- **FR-001**: System MUST show the basket, the address and the payment form on one page.
"""


def test_front_matter_and_metadata_lines_are_metadata_never_requirements() -> None:
    cards = read(SPEC_KIT_HEADER)
    assert len(cards) == 1
    document = cards[0].document
    assert document is not None
    assert document.metadata == {
        "title": "One-page checkout",
        "owner": "Dana Whitfield",
        "Feature Branch": "004-one-page-checkout",
        "Created": "2025-11-02",
        "Status": "Draft",
        "Input": 'User description: "Customers must be able to pay on one page without an '
        'account."',
        "Version": "1.2",
        "Author": "Payments team",
        "Last Updated": "2025-11-20",
        "Reviewers": "Sam Ortiz",
        "Release": "2026.1",
    }
    assert [(r.author_id, r.text) for r in document.requirements] == [
        ("FR-001", "System MUST show the basket, the address and the payment form on one page.")
    ]
    # The Input line holds a modal sentence ("must be able to pay"): still metadata.
    assert not any("Customers" in t or "Payments team" in t for t in all_requirement_texts(cards))


# --- 3. glossary and key entities ------------------------------------------------------------

SPEC_KIT_ENTITIES = """\
# Feature Specification: Team Invitations

## Requirements

### Functional Requirements

- **FR-001**: System MUST let a workspace admin invite a teammate by email.

### Key Entities

- **Workspace**: A shared space that owns projects and members.
- **Invitation**: A pending offer to join a workspace, valid for 7 days.

## Glossary

| Term | Definition |
|------|------------|
| Admin | A member who can manage billing and members |
| Seat | One paid member slot |
"""


def test_key_entities_and_a_glossary_table_are_terms_not_requirements() -> None:
    cards = read(SPEC_KIT_ENTITIES)
    assert [c.title for c in cards] == ["Functional Requirements"]
    document = cards[0].document
    assert document is not None
    assert document.terms == [
        Term(term="Workspace", definition="A shared space that owns projects and members."),
        Term(
            term="Invitation", definition="A pending offer to join a workspace, valid for 7 days."
        ),
        Term(term="Admin", definition="A member who can manage billing and members"),
        Term(term="Seat", definition="One paid member slot"),
    ]
    assert all_requirement_texts(cards) == [
        "System MUST let a workspace admin invite a teammate by email."
    ]


# --- 4. a spec-kit user story ----------------------------------------------------------------

SPEC_KIT_STORY = """\
# Feature Specification: Double-Headed Arrow

## User Scenarios & Testing *(mandatory)*

### User Story 1 - Draw Double-Headed Arrows (Priority: P1)

Users can select and draw lines with arrows at both ends to show two-way relationships.

**Why this priority**: Core functionality - without it the feature delivers no value.

**Acceptance Scenarios**:

1. **Given** the canvas is open, **When** user selects the double-headed arrow tool and draws \
a line, **Then** the line displays arrows at both the start and end points
2. **Given** a double-headed arrow is selected, **When** user moves a control point, \
**Then** both arrow heads keep their orientation
"""


def test_a_spec_kit_user_story_is_one_requirement_with_its_scenarios_as_criteria() -> None:
    cards = read(SPEC_KIT_STORY)
    assert [(c.title, c.document.heading_path if c.document else None) for c in cards] == [
        (
            "Draw Double-Headed Arrows",
            [
                "Feature Specification: Double-Headed Arrow",
                "User Scenarios & Testing",
                "User Story 1 - Draw Double-Headed Arrows",
            ],
        )
    ]
    (story,) = requirements(cards[0])
    assert story.text == (
        "Users can select and draw lines with arrows at both ends to show two-way relationships."
    )
    assert story.author_priority == "P1"
    # "and" inside a clause is the author's conjunction, not a Given/When/Then keyword.
    assert [(c.given, c.when, c.then) for c in story.acceptance_criteria] == [
        (
            "the canvas is open",
            "user selects the double-headed arrow tool and draws a line",
            "the line displays arrows at both the start and end points",
        ),
        (
            "a double-headed arrow is selected",
            "user moves a control point",
            "both arrow heads keep their orientation",
        ),
    ]
    assert story.acceptance_criteria[1].text == (
        "Given a double-headed arrow is selected, When user moves a control point, "
        "Then both arrow heads keep their orientation"
    )
    assert cards[0].document is not None
    assert "Why this priority" in cards[0].document.context
    assert not any("Core functionality" in t for t in all_requirement_texts(cards))


# --- 5. id'd requirement bullets and success criteria ----------------------------------------

SPEC_KIT_IDS = """\
# Feature Specification: Upgrade Node.js

## Requirements *(mandatory)*

### Functional Requirements

- **FR-001**: System MUST build and run on the current Node.js LTS release.
- **FR-002**: Developers MUST be warned when their local Node.js version is too old.

## Success Criteria *(mandatory)*

### Measurable Outcomes

- **SC-001**: All existing unit tests pass on the new Node.js release with no new failures.
- **SC-002**: Production build time does not grow by more than 10%.
"""


def test_id_d_bullets_keep_their_id_and_success_criteria_are_their_own_kind() -> None:
    cards = read(SPEC_KIT_IDS)
    assert [c.title for c in cards] == ["Functional Requirements", "Measurable Outcomes"]
    assert [
        (r.author_id, r.text, r.kind, r.author_priority, r.form) for r in requirements(cards[0])
    ] == [
        (
            "FR-001",
            "System MUST build and run on the current Node.js LTS release.",
            RequirementKind.FUNCTIONAL,
            "MUST",
            StatementForm.LIST_ITEM,
        ),
        (
            "FR-002",
            "Developers MUST be warned when their local Node.js version is too old.",
            RequirementKind.FUNCTIONAL,
            "MUST",
            StatementForm.LIST_ITEM,
        ),
    ]
    assert [(r.author_id, r.text, r.kind) for r in requirements(cards[1])] == [
        (
            "SC-001",
            "All existing unit tests pass on the new Node.js release with no new failures.",
            RequirementKind.SUCCESS_CRITERION,
        ),
        (
            "SC-002",
            "Production build time does not grow by more than 10%.",
            RequirementKind.SUCCESS_CRITERION,
        ),
    ]
    first = requirements(cards[0])[0]
    assert spanned(cards[0], first) == (
        "**FR-001**: System MUST build and run on the current Node.js LTS release."
    )


# --- 6. a requirements table -----------------------------------------------------------------

TASKMASTER_TABLE = """\
# contribux - Product Requirements Document

## 7. Functional Requirements

### F1: Intelligent Repository Discovery

| ID | Description | Priority | Acceptance Criteria |
|----|-------------|----------|---------------------|
| F1.1 | Scan GitHub trending daily | P0 | Runs every 24 hours |
| F1.2 | Score repositories by contributor friendliness | P1 | Score between 0 and 100 |
"""


def test_a_requirements_table_is_one_requirement_per_row() -> None:
    cards = read(TASKMASTER_TABLE, "prd.md")
    assert [(c.title, c.document.heading_path if c.document else None) for c in cards] == [
        (
            "F1: Intelligent Repository Discovery",
            [
                "contribux - Product Requirements Document",
                "Functional Requirements",
                "F1: Intelligent Repository Discovery",
            ],
        )
    ]
    card = cards[0]
    found = requirements(card)
    assert [
        (r.author_id, r.text, r.author_priority, r.form, r.acceptance_criteria) for r in found
    ] == [
        (
            "F1.1",
            "Scan GitHub trending daily",
            "P0",
            StatementForm.TABLE_ROW,
            [
                AcceptanceCriterion(
                    given="", when="", then="Runs every 24 hours", text="Runs every 24 hours"
                )
            ],
        ),
        (
            "F1.2",
            "Score repositories by contributor friendliness",
            "P1",
            StatementForm.TABLE_ROW,
            [
                AcceptanceCriterion(
                    given="",
                    when="",
                    then="Score between 0 and 100",
                    text="Score between 0 and 100",
                )
            ],
        ),
    ]
    assert [spanned(card, r) for r in found] == [
        "| F1.1 | Scan GitHub trending daily | P0 | Runs every 24 hours |",
        "| F1.2 | Score repositories by contributor friendliness | P1 | Score between 0 and 100 |",
    ]
    assert not any("|" in r.text for r in found)


# --- 7. Kiro requirements.md -----------------------------------------------------------------

KIRO = """\
# Requirements Document

## Introduction

The Player Trail Effect adds ghostly sparkles behind the player character as they move.

## Requirements

### Requirement 1

**User Story:** As a player, I want my character to leave sparkles as I move, so that I can \
see the path I've taken.

#### Acceptance Criteria

1. WHEN the player character moves THEN the system SHALL generate sparkle effects at the \
previous position
2. WHEN the player stops moving THEN the system SHALL stop generating new sparkle effects
3. IF the game is paused THEN the system SHALL freeze existing sparkles in place
"""


def test_kiro_ears_criteria_are_the_requirements_and_the_story_is_context() -> None:
    cards = read(KIRO, "requirements.md")
    assert [(c.title, c.document.heading_path if c.document else None) for c in cards] == [
        ("Requirement 1", ["Requirements Document", "Requirements", "Requirement 1"])
    ]
    found = requirements(cards[0])
    assert [(r.text, r.form) for r in found] == [
        (
            "WHEN the player character moves THEN the system SHALL generate sparkle effects at "
            "the previous position",
            StatementForm.EARS,
        ),
        (
            "WHEN the player stops moving THEN the system SHALL stop generating new sparkle "
            "effects",
            StatementForm.EARS,
        ),
        (
            "IF the game is paused THEN the system SHALL freeze existing sparkles in place",
            StatementForm.EARS,
        ),
    ]
    assert not any(r.form is StatementForm.USER_STORY or r.user_story for r in found)
    assert cards[0].document is not None
    assert cards[0].document.context == (
        "User Story: As a player, I want my character to leave sparkles as I move, so that I "
        "can see the path I've taken. The Player Trail Effect adds ghostly sparkles behind the "
        "player character as they move."
    )
    assert "#### Acceptance Criteria" in cards[0].body


# --- 8. open questions -----------------------------------------------------------------------

SPEC_KIT_QUESTIONS = """\
# Feature Specification: Double-Headed Arrow

## Requirements

### Functional Requirements

- **FR-001**: System MUST render arrow heads at both line endpoints.
- **FR-002**: System MUST export double-headed arrows to SVG \
[NEEDS CLARIFICATION: should PNG export keep both heads?]

### Edge Cases

- What happens when a double-headed arrow has zero length?
- How does the system handle very short arrows where the heads would overlap?
"""


def test_edge_cases_and_clarification_markers_are_questions_with_spans() -> None:
    cards = read(SPEC_KIT_QUESTIONS)
    assert [c.title for c in cards] == ["Functional Requirements"]
    card = cards[0]
    assert card.document is not None
    assert [r.author_id for r in card.document.requirements] == ["FR-001", "FR-002"]
    questions = card.document.questions
    assert [q.text for q in questions] == [
        "should PNG export keep both heads?",
        "What happens when a double-headed arrow has zero length?",
        "How does the system handle very short arrows where the heads would overlap?",
    ]
    assert [
        card.body[q.source_span.start : q.source_span.end] for q in questions if q.source_span
    ] == [
        "[NEEDS CLARIFICATION: should PNG export keep both heads?]",
        "What happens when a double-headed arrow has zero length?",
        "How does the system handle very short arrows where the heads would overlap?",
    ]
    assert not any(t.startswith(("What happens", "How does")) for t in all_requirement_texts(cards))


# --- 9. sections that state no requirement ---------------------------------------------------

PRD_WITH_SKIPPED_SECTIONS = """\
# Product Requirements Document: Shelf

## Functional Requirements

- Users can add a book to a shelf by scanning its barcode.

## Out of Scope

- The app must not sell books in version 1.
- Users should be able to lend books to friends.

## Roadmap

Phase 2 will add social features. The team must hire a second designer before then.

## Risks

- The barcode API may change its pricing.
- We must finish before the spring book fair.
"""


def test_out_of_scope_roadmap_and_risks_state_no_requirement() -> None:
    cards = read(PRD_WITH_SKIPPED_SECTIONS, "prd.md")
    assert [c.title for c in cards] == ["Functional Requirements"]
    assert all_requirement_texts(cards) == [
        "Users can add a book to a shelf by scanning its barcode."
    ]
    assert "sell books" not in cards[0].body
    assert "designer" not in cards[0].body


# From 5dlabs/toolman's PRD: a "Must Have" list and a "Nice to Have" list under one heading.
MVP_LABELS = """\
# MCP Bridge Proxy

### MVP Definition (Post-Verification)
**Minimum Viable Product**: Working 4 core tools with tool prefixes

**Must Have** (TBD based on verification):
- Working tool filtering (enabled:true behavior)
- Tool prefixing for server identification

**Nice to Have**:
- AI-driven server addition (can be manual initially)
- Multi-agent support (stretch goal)
  - one agent per editor window
"""


def test_a_nice_to_have_label_puts_its_list_later_and_a_must_have_label_keeps_its_list() -> None:
    cards = read(MVP_LABELS, "prd.md")
    texts = all_requirement_texts(cards)
    assert "Working tool filtering (enabled:true behavior)" in texts
    assert "Tool prefixing for server identification" in texts
    assert not [t for t in texts if "server addition" in t or "agent" in t.lower()], texts
    # Kept as the author wrote it, in the card's text: nothing is lost, nothing is a story.
    assert "AI-driven server addition (can be manual initially)" in cards[0].body


# --- 10. prose under a neutral heading -------------------------------------------------------

PROSE_PRD = """\
# Toolman PRD

## Tool Filtering

Toolman sits between the editor and every MCP server. Each project gets its own list of \
enabled tools. The proxy must hide every tool that is not enabled for the current project. \
As a developer, I want to enable tools per project, so that my agent only sees what it \
needs. This keeps prompts short.
"""


def test_prose_under_a_neutral_heading_gives_only_its_modal_and_story_sentences() -> None:
    cards = read(PROSE_PRD, "prd.md")
    assert [(c.title, c.document.heading_path if c.document else None) for c in cards] == [
        ("Tool Filtering", ["Toolman PRD", "Tool Filtering"])
    ]
    found = requirements(cards[0])
    assert [(r.text, r.form) for r in found] == [
        (
            "The proxy must hide every tool that is not enabled for the current project.",
            StatementForm.MODAL,
        ),
        (
            "As a developer, I want to enable tools per project, so that my agent only sees "
            "what it needs.",
            StatementForm.USER_STORY,
        ),
    ]
    story = found[1].user_story
    assert story is not None
    assert (story.as_a, story.i_want, story.so_that) == (
        "developer",
        "enable tools per project",
        "my agent only sees what it needs",
    )
    assert [spanned(cards[0], r) for r in found] == [r.text for r in found]


# --- 11. spans -------------------------------------------------------------------------------


def test_the_span_check_catches_a_span_that_misses_its_requirement() -> None:
    # check_spans runs on every reading above (read()); here it must refuse a wrong span.
    (card,) = read(PROSE_PRD, "prd.md")
    assert card.document is not None
    requirement = card.document.requirements[0]
    moved = requirement.model_copy(
        update={"source_span": requirement.source_span.model_copy(update={"start": 0, "end": 5})}
    )
    broken = CardDraft(
        card.title,
        card.body,
        card.external_id,
        card.position,
        card.document.model_copy(update={"requirements": [moved]}),
    )
    with pytest.raises(AssertionError):
        check_spans([broken])


# --- 12. plain text --------------------------------------------------------------------------

TASKMASTER_TXT = """\
<context>
# Overview
Shelf is a small app for tracking the books in a home library.

# Core Features
    The app must let a reader scan a barcode to add a book.
    Readers can mark a book as lent and record who has it.
</context>
"""


def test_plain_text_reads_indented_lines_as_text_not_code() -> None:
    cards = read(TASKMASTER_TXT, "prd.txt")
    assert [(c.title, c.document.heading_path if c.document else None) for c in cards] == [
        ("Core Features", ["Core Features"])
    ]
    assert all_requirement_texts(cards) == [
        "The app must let a reader scan a barcode to add a book.",
        "Readers can mark a book as lent and record who has it.",
    ]
    assert cards[0].document is not None
    assert cards[0].document.context == (
        "Shelf is a small app for tracking the books in a home library."
    )


# --- 13. the card limit ----------------------------------------------------------------------

LIMIT = 2000
LONG_SECTION = "# Audit Log PRD\n\n## Functional Requirements\n\n" + "".join(
    f"- **FR-{n:03d}**: System MUST keep audit record {n} for seven years with its author.\n"
    for n in range(1, 41)
)


def test_a_section_over_the_card_limit_is_split_into_parts_at_block_boundaries() -> None:
    assert len(LONG_SECTION) > 1.5 * LIMIT
    cards = read(LONG_SECTION, "prd.md", max_card_chars=LIMIT)
    assert len(cards) >= 2
    assert [c.title for c in cards] == ["Functional Requirements"] + [
        f"Functional Requirements (part {n})" for n in range(2, len(cards) + 1)
    ]
    for card in cards:
        assert len(card.title) + len(card.body) <= LIMIT, card.title
        assert card.document is not None
        assert card.document.heading_path == ["Audit Log PRD", "Functional Requirements"]
        # Cut at block boundaries: every line of a part is a whole line of the document.
        lines = LONG_SECTION.split("\n")
        assert all(line in lines for line in card.body.split("\n")), card.title
    assert [r.author_id for c in cards for r in requirements(c)] == [
        f"FR-{n:03d}" for n in range(1, 41)
    ]
    assert [r.text for c in cards for r in requirements(c)] == [
        f"System MUST keep audit record {n} for seven years with its author." for n in range(1, 41)
    ]


def test_parts_of_a_document_without_headings_are_named_after_its_first_part() -> None:
    # A pasted list with no heading at all: its parts still need readable, consistent titles.
    text = "".join(
        f"- The app must keep audit record {n} for seven years with its author.\n"
        for n in range(1, 61)
    )
    cards = read(text, "notes.md", max_card_chars=LIMIT)
    assert len(cards) >= 2
    first = cards[0].title
    assert first
    assert first == first.strip()
    assert [c.title for c in cards] == [first] + [
        f"{first} (part {n})" for n in range(2, len(cards) + 1)
    ]
    for card in cards:
        assert len(card.title) + len(card.body) <= LIMIT, card.title
    assert len(all_requirement_texts(cards)) == 60


def test_one_paragraph_over_the_card_limit_is_refused_card_too_long() -> None:
    paragraph = "The system must log every change to a shelf with its author. " * 40
    error = refused(f"# Shelf PRD\n\n## Requirements\n\n{paragraph}\n", max_card_chars=LIMIT)
    assert error.code == "card_too_long"


# --- 14. linear time on hostile input ---------------------------------------------------------

HOSTILE = {
    "a heading of 200,000 spaces": lambda: "#" + " " * 200_000 + "x\n",
    "200,000 [": lambda: "[" * 200_000,
    "one 5 MB line": lambda: "word " * ((5 * MB - 1024) // 5),
    "200,000 nested list markers": lambda: "- " * 200_000 + "x\n",
    "200,000 quote markers": lambda: "> " * 200_000 + "x\n",
    "a list of 200,000 items": lambda: "- The app must sync.\n" * 200_000,
}
# What each gives: a headings-only file has no cards; one paragraph over the card limit is
# refused; the nested markers hold one word ("x"), a card or nothing; 200,000 requirements
# of one section are more than one upload reads (too_many_cards, before any parsing).
EXPECTED = {
    "a heading of 200,000 spaces": {"no_cards"},
    "200,000 [": {"card_too_long"},
    "one 5 MB line": {"card_too_long"},
    "200,000 nested list markers": {"no_cards", "cards:1"},
    "200,000 quote markers": {"no_cards", "cards:1"},
    "a list of 200,000 items": {"too_many_cards"},
}
# A quadratic reading of any of these inputs takes minutes; a linear one well under a second
# (on a slow CI machine, a few). The deadline only catches the pathological case: timings are
# never asserted (project rule), and a reading past the deadline is killed with its process.
DEADLINE_S = 20


def _outcome(label: str) -> str:
    """Runs in the worker process: the reading's outcome, as text (an UploadError does not
    survive pickling back: its constructor takes keyword arguments)."""
    data = HOSTILE[label]().encode("utf-8")
    assert len(data) <= UploadLimits().max_file_bytes
    try:
        cards = split_upload("hostile.md", None, data, UploadLimits())
    except UploadError as error:
        return error.code
    check_spans(cards)
    return f"cards:{len(cards)}"


@pytest.mark.parametrize("label", list(HOSTILE))
def test_hostile_input_is_read_in_linear_time(label: str) -> None:
    # fork: the worker shares this module as it is loaded (this test directory is not a
    # package, so a spawned process could not import _outcome by name).
    with multiprocessing.get_context("fork").Pool(1) as pool:
        pending = pool.apply_async(_outcome, (label,))
        try:
            outcome = pending.get(timeout=DEADLINE_S)
        except multiprocessing.TimeoutError:
            pytest.fail(f"{label}: not read within {DEADLINE_S} s (quadratic?)")
        finally:
            pool.terminate()
    counted = "cards" if outcome.startswith("cards:") else outcome
    assert outcome in EXPECTED[label] or counted in EXPECTED[label], outcome


# --- what real PRDs showed the benchmark ------------------------------------------------------

BMAD_LIKE = """\
# Product Requirements Document - demo

## Functional Requirements

### FR-3: Capstone Harness

#### Phase 1 — Setup wizard

- **FR-3.1 (vision):** A trainee who finishes the capstone has experienced the chain.
- **FR-3.28 *(intentional non-capability)*:** The portal does **not** auto-pick the tool.
- It would be nice to have a forecast of next month's workload, later.
- **Out of scope (explicitly documented):** COPPA, FERPA, age verification.

### Journey Requirements Summary

- The portal must offer three entry points.

## Non-Functional Requirements

### Categories Skipped

- **Scalability:** Not applicable.
- **Security:** Secrets must never be logged.

## Future Roadmap (V2+)

### Advanced Features

- The portal must support teams.

## 7.1 Core Features

#### F1: Discovery
**Priority:** P0 (Must Have)

| Requirement | Description | Acceptance Criteria |
|-------------|-------------|---------------------|
| F1.1 | Scan GitHub trending daily | Runs every 24 hours |
"""


def test_what_real_prds_showed_the_benchmark() -> None:
    cards = read(BMAD_LIKE, "prd.md")
    found = {(r.author_id, r.text) for card in cards for r in requirements(card)}
    # An aside between the id and its colon keeps the id; under "Functional Requirements" an
    # inner "Phase 1" heading does not take the requirements away.
    assert ("FR-3.1", "A trainee who finishes the capstone has experienced the chain.") in found
    assert ("FR-3.28", "The portal does not auto-pick the tool.") in found
    texts = {text for _, text in found}
    # An out-of-scope item, a requirements summary, "Not applicable" and everything under a
    # future roadmap are not requirements.
    assert not any("COPPA" in t or "entry points" in t or "teams" in t for t in texts), texts
    assert not any("forecast" in t for t in texts), texts  # "nice to have ..., later"
    assert not any("Not applicable" in t for t in texts), texts
    assert "Security: Secrets must never be logged." in texts
    # "| Requirement | Description |": the id column is not the text; the section's priority
    # line is its rows' priority, not document metadata.
    (row,) = [r for card in cards for r in requirements(card) if r.author_id == "F1.1"]
    assert (row.text, row.author_priority) == ("Scan GitHub trending daily", "P0")
    assert [c.text for c in row.acceptance_criteria] == ["Runs every 24 hours"]
    assert all(
        "Priority" not in (card.document.metadata if card.document else {}) for card in cards
    )


ROADMAP_AND_QUALITIES = """\
# Proxy PRD

## Packaging & Deployability

- Docker images use NodeJS v24

## Development Roadmap

### Phase 1: Fix core tools

**Deliverables**:
- Fix tool filtering if broken

**Success Criteria**: All 4 core tools working with tool prefixes

### Phase 3: Multi-agent support (STRETCH GOAL)

**Success Criteria**: Agents share one proxy
"""


def test_a_quality_heading_holds_requirements_and_a_phase_success_line_is_a_criterion() -> None:
    cards = read(ROADMAP_AND_QUALITIES, "prd.txt")
    found = {(r.text, r.kind) for card in cards for r in requirements(card)}
    assert found == {
        ("Docker images use NodeJS v24", RequirementKind.NON_FUNCTIONAL),
        (
            "Success Criteria: All 4 core tools working with tool prefixes",
            RequirementKind.SUCCESS_CRITERION,
        ),
    }


# --- 12. a document that ids its requirements -----------------------------------------------

# From jlengelbrecht/bmad_demo's PRD (shortened): id'd FR/NFR lists, and un-id'd bullets in a
# scope list, a constraints section and a browser matrix that restate or surround them.
BMAD_IDED = """\
# Product Requirements Document - bmad_demo

## Success Criteria

### Technical Success

- **Cold-clone-to-running-app under 5 minutes** on a clean dev machine.
- **Zero data egress** confirmed: no telemetry, no remote fetches at runtime.

## Product Scope

### MVP — Minimum Viable Product (v1, all together)

- **Three audience entry points:** `training/00-start-here.md`, `training/stakeholders.md`.
- **Local-only distribution:** `git clone && npm install && npm run dev`.

## Domain-Specific Requirements

### Technical Constraints

- **No authentication, no SSO, no RBAC.** The portal trusts the local user.

### Compliance & Regulatory

- **WCAG 2.x accessibility — Level AA target.** The portal is a teaching tool.

## Web Application Specific Requirements

### Browser Support Matrix

| Browser | Support |
|---|---|
| Firefox | Latest two stable versions |

## Functional Requirements

### FR-1: Curriculum Navigation & Audience Entry

- **FR-1.1:** A trainee can land on three audience entry points from the portal home.
- **FR-1.2:** A trainee can navigate through the six lessons in sequence.
- **FR-1.3:** A stakeholder can reach a 15-minute demo script from the home page.

## Non-Functional Requirements

### Security

- **NFR-S2:** No authentication, authorization, session, or user-account system exists.
- **NFR-S3:** The portal makes no outbound network calls at runtime.

### Categories Skipped (Documented for Completeness)

- **Scalability:** Not applicable. Each trainee runs their own clone.
"""


def test_a_document_that_ids_its_requirements_keeps_only_its_lists_and_success_criteria() -> None:
    cards = read(BMAD_IDED, "prd.md")
    texts = all_requirement_texts(cards)
    ids = [r.author_id for card in cards for r in requirements(card)]
    assert ids == [None, None, "FR-1.1", "FR-1.2", "FR-1.3", "NFR-S2", "NFR-S3"], texts
    assert texts[:2] == [
        "Cold-clone-to-running-app under 5 minutes on a clean dev machine.",
        "Zero data egress confirmed: no telemetry, no remote fetches at runtime.",
    ]
    # "WCAG 2.x" is a standard's version, not an author id; "Not applicable" is no ask.
    assert not [t for t in texts if "WCAG" in t or "Scalability" in t or "Firefox" in t]
    # Sections left with no requirement are context, as a roadmap is: no card of their own.
    assert [c.title for c in cards] == [
        "Technical Success",
        "FR-1: Curriculum Navigation & Audience Entry",
        "Security",
    ]


def test_without_author_ids_a_scope_list_and_a_constraints_section_are_requirements() -> None:
    plain = re.sub(r"\*\*(?:FR|NFR)-[0-9A-Z.]+:\*\* ", "", BMAD_IDED)
    texts = all_requirement_texts(read(plain, "prd.md"))
    assert "Three audience entry points: training/00-start-here.md, training/stakeholders.md." in [
        t.replace("`", "") for t in texts
    ]
    assert any(t.startswith("No authentication, no SSO, no RBAC.") for t in texts)
    assert any(t.startswith("WCAG 2.x accessibility") for t in texts)


# From 5dlabs/toolman's PRD: a verification phase's criterion is about the team's knowledge.
PHASES = """\
# MCP Bridge Proxy

## Development Roadmap (Updated)

### Phase 0: Current State Verification (IMMEDIATE) 🔄 **TODAY**
**Scope**: Understand what actually works vs what's broken/missing

**Success Criteria**: Updated documentation with confirmed working vs broken vs missing

### Phase 1: Fix/Implement Core Tools (AFTER VERIFICATION)
**Scope**: Based on verification results, fix broken or implement missing functionality

**Success Criteria**: All 4 core tools working with tool prefixes and MCP notifications
"""


def test_a_verification_phases_success_line_is_not_a_requirement_a_build_phases_is() -> None:
    found = [r for card in read(PHASES, "prd.md") for r in requirements(card)]
    assert [(r.text, r.kind) for r in found] == [
        (
            "Success Criteria: All 4 core tools working with tool prefixes and MCP notifications",
            RequirementKind.SUCCESS_CRITERION,
        )
    ]


# From BjornMelin/contribux's PRD: optimisation strategies and post-launch metrics.
STRATEGIES = """\
# contribux - Product Requirements Document (PRD)

## 15. Performance Requirements

### 15.1 Performance Targets

- API response time under 500ms at p95

### 15.2 Optimization Strategies

#### Backend Optimization
- Database query optimization (indexes, materialized views)
- Redis caching for hot data

## 19. Post-Launch Considerations

### 19.1 Success Monitoring

#### Week 1-4 Metrics
- User signups and activation rate
- First contribution timing
"""


def test_optimisation_strategies_and_post_launch_metrics_are_not_requirements() -> None:
    assert all_requirement_texts(read(STRATEGIES, "prd.md")) == [
        "API response time under 500ms at p95"
    ]

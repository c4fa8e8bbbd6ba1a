"""Statements as authors write them: excerpts from real spec-kit, Kiro and PRD documents."""

from __future__ import annotations

import time

import pytest

from contracts.backlog import RequirementKind
from contracts.documents import StatementForm
from services.gateway.ingest.inline import strip_inline
from services.gateway.ingest.statements import (
    author_id_of,
    author_priority_of,
    criteria_from_lines,
    is_question,
    kind_of,
    metadata_of,
    questions_in,
    statement,
    user_story_of,
)


def test_spec_kit_functional_requirement_keeps_id_priority_and_clarification() -> None:
    # github/spec-kit templates/spec-template.md
    raw = (
        "- **FR-006**: System MUST authenticate users via "
        "[NEEDS CLARIFICATION: auth method not specified - email/password, SSO, OAuth?]"
    )
    found = statement(raw, 100, form=StatementForm.LIST_ITEM)
    assert found is not None
    assert found.author_id == "FR-006"
    assert found.author_priority == "MUST"
    assert found.text.startswith("System MUST authenticate users via [NEEDS CLARIFICATION: auth")
    assert found.source_span.start == 102  # after "- "
    assert found.source_span.end == 100 + len(raw)
    questions = questions_in(raw, 100)
    assert [q.text for q in questions] == [
        "auth method not specified - email/password, SSO, OAuth?"
    ]
    span = questions[0].source_span
    assert span is not None
    assert raw[span.start - 100 : span.end - 100].startswith("[NEEDS CLARIFICATION")


def test_kiro_ears_criterion_is_ears() -> None:
    raw = "1. WHEN a user selects a file THEN the system SHALL display a preview"
    found = statement(raw, 0, form=StatementForm.LIST_ITEM)
    assert found is not None
    assert found.form is StatementForm.EARS
    assert found.text == "WHEN a user selects a file THEN the system SHALL display a preview"


def test_user_story_parts() -> None:
    parts = user_story_of(
        "User Story: As a player, I want to see my trail, so that I can retrace my steps"
    )
    assert parts is not None
    assert (parts.as_a, parts.i_want, parts.so_that) == (
        "player",
        "see my trail",
        "I can retrace my steps",
    )
    assert user_story_of("As of today the system exports PDFs") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(Priority: P1)", "P1"),
        ("### User Story 1 - Draw arrows (Priority: P2)", "P2"),
        ("> Priority: P0 — Core feature, required for MVP", "P0"),
        ("Must have", "Must have"),
        ("high", "High"),
        ("The system SHOULD cache tiles", "SHOULD"),
        ("The system should cache tiles", None),
    ],
)
def test_author_priority(text: str, expected: str | None) -> None:
    assert author_priority_of(text) == expected


def test_ids_but_not_priorities() -> None:
    assert author_id_of("SC-001: Users finish in 2 minutes") == (
        "SC-001",
        "Users finish in 2 minutes",
    )
    assert author_id_of("P0: the app starts")[0] is None
    assert author_id_of("Dispatch: see the board")[0] is None


def test_kinds() -> None:
    assert kind_of("x", author_id="SC-002") is RequirementKind.SUCCESS_CRITERION
    assert kind_of("x", author_id="NFR-3") is RequirementKind.NON_FUNCTIONAL
    assert kind_of("Responses arrive within 200 ms") is RequirementKind.NON_FUNCTIONAL
    assert kind_of("The backend must use PostgreSQL 15") is RequirementKind.CONSTRAINT
    assert kind_of("Users see jobs", section="Success Criteria") is (
        RequirementKind.SUCCESS_CRITERION
    )
    assert kind_of("Users can reset passwords") is RequirementKind.FUNCTIONAL


def test_not_requirements() -> None:
    assert statement("**Version**: 0.9", 0, form=StatementForm.LIST_ITEM) is None
    assert metadata_of("Input: User description: add arrows") == (
        "Input",
        "User description: add arrows",
    )
    q = "Which wording do we use for commercial versus residential customers? TBD"
    assert statement(q, 0, form=StatementForm.LIST_ITEM) is None
    assert is_question(q)
    assert is_question("What happens when the file is empty?")
    assert not is_question("Users can export reports")


def test_given_when_then_one_line_and_gherkin_lines() -> None:
    # spec-kit acceptance scenario and a Gherkin block
    one = criteria_from_lines(
        [
            "1. **Given** a settings file exists, **When** the user opens the app, "
            "**Then** the saved theme is applied"
        ]
    )
    assert [(c.given, c.when, c.then) for c in one] == [
        ("a settings file exists", "the user opens the app", "the saved theme is applied")
    ]
    assert one[0].text.startswith("Given a settings file exists, When")
    many = criteria_from_lines(
        ["Given a cart", "And an item in it", "When I pay", "Then I get a receipt", "Given x"]
    )
    assert [(c.given, c.when, c.then) for c in many] == [
        ("a cart; an item in it", "I pay", "I get a receipt")
    ]


def test_inline_stripped_readably() -> None:
    assert (
        strip_inline("**Login** via [SSO](https://x.y) using `oauth2` ![logo](a.png) <b>now</b>")
        == "Login via SSO using oauth2 logo now"
    )
    long = "**bold** " + "word [link](http://a.b) " * 200
    assert strip_inline(long).startswith("bold word link word link")


@pytest.mark.parametrize(
    "hostile", ["[" * 200_000, "*a " * 300_000, "](" * 200_000, "<a" * 200_000, "_" * 200_000]
)
def test_statement_helpers_are_linear(hostile: str) -> None:
    helpers = {
        "strip_inline": lambda: strip_inline(hostile),
        "statement": lambda: statement(hostile, 0, form=StatementForm.LIST_ITEM),
        "criteria_from_lines": lambda: criteria_from_lines([hostile]),
        "questions_in": lambda: questions_in(hostile),
    }
    for name, call in helpers.items():
        started = time.process_time()
        call()
        elapsed = time.process_time() - started
        print(f"{name} on {hostile[:4]!r} x {len(hostile)}: {elapsed:.3f} s")
        assert elapsed < 1.0, name


def test_a_standards_version_is_not_an_author_id() -> None:
    assert author_id_of("WCAG 2.x accessibility — Level AA target.") == (
        None,
        "WCAG 2.x accessibility — Level AA target.",
    )
    assert author_id_of("FR-1. The system exports CSV")[0] == "FR-1"

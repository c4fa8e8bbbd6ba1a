"""The analysis keeps the author's requirements as the document reader found them, every one,
and adds only what an LLM finds beyond them, each quote checked against the card's text."""

from __future__ import annotations

import time

import pytest

from contracts.backlog import (
    AcceptanceCriterion,
    CardKind,
    OpenQuestion,
    Priority,
    RequirementKind,
    SourceSpan,
)
from contracts.documents import DocumentContext, StatedRequirement, StatementForm, Term
from services.analysis import logic
from services.runtime.text import segments


def stated_card(count: int) -> logic.Card:
    lines = [f"- **FR-{n:03d}**: System MUST keep audit record {n}." for n in range(1, count + 1)]
    body = "\n".join(lines)
    requirements = []
    for n, line in enumerate(lines, start=1):
        text = f"System MUST keep audit record {n}."
        start = body.index(line) + line.index("System")
        requirements.append(
            StatedRequirement(
                text=text,
                source_span=SourceSpan(start=start, end=start + len(text)),
                form=StatementForm.LIST_ITEM,
                author_id=f"FR-{n:03d}",
                author_priority="P2" if n > 1 else "P0",
            )
        )
    document = DocumentContext(
        heading_path=["Audit log spec", "Requirements"],
        terms=[Term(term="Audit record", definition="One change someone made.")],
        requirements=requirements,
        questions=[OpenQuestion(text="How long are records kept? TBD")],
    )
    return logic.Card("c1", "p1", "Functional Requirements", body, 0, document)


def test_a_card_with_forty_requirements_keeps_forty_with_the_authors_ids_and_spans() -> None:
    card = stated_card(40)
    analysis = logic.to_analysis(card, logic.offline_draft(card))
    assert len(analysis.requirements) == 40
    assert [r.author_id for r in analysis.requirements] == [f"FR-{n:03d}" for n in range(1, 41)]
    assert [r.id for r in analysis.requirements][:2] == ["c1:R1", "c1:R2"]
    for requirement in analysis.requirements:
        span = requirement.source_span
        assert card.body[span.start : span.end] == requirement.text
    assert analysis.heading_path == ["Audit log spec", "Requirements"]
    assert analysis.priority is Priority.P1  # the author's P0 on FR-001
    assert analysis.open_questions == ["How long are records kept? TBD"]


def test_llm_requirements_join_the_found_ones_unless_they_restate_one() -> None:
    card = stated_card(2)
    extra = "System MUST keep audit record 2."
    draft = logic.AnalysisDraft(
        summary="Audit records.",
        kind=CardKind.FEATURE,
        personas=["auditor"],
        priority=Priority.P2,
        open_questions=["Who may read the log?"],
        requirements=[
            logic.DraftRequirement(text="Keep record 2", quote=extra),  # restates FR-002
            logic.DraftRequirement(
                text="Keep record 1 for audits", quote="keep audit record 1", kind="constraint"
            ),  # overlaps FR-001's span
        ],
    )
    analysis = logic.to_analysis(card, draft)
    assert [r.author_id for r in analysis.requirements] == ["FR-001", "FR-002"]
    assert analysis.open_questions == ["How long are records kept? TBD", "Who may read the log?"]


def test_a_new_requirement_from_the_llm_gets_its_span_and_kind() -> None:
    body = "Shoppers pay by card.\n\nRefunds must reach the card within 5 days."
    card = logic.Card("c2", "p1", "Payments", body)
    draft = logic.AnalysisDraft(
        summary="s",
        kind=CardKind.FEATURE,
        personas=["shopper"],
        priority=Priority.P2,
        open_questions=[],
        requirements=[
            logic.DraftRequirement(
                text="Refund within 5 days",
                quote="refunds MUST reach the card within 5 days",
                kind=RequirementKind.NON_FUNCTIONAL,
            )
        ],
    )
    logic.validate(card)(draft)
    (requirement,) = logic.to_analysis(card, draft).requirements
    span = requirement.source_span
    assert body[span.start : span.end] == "Refunds must reach the card within 5 days"
    assert requirement.kind is RequirementKind.NON_FUNCTIONAL


def test_a_paraphrased_quote_is_traced_to_its_passage_or_dropped_beside_the_authors() -> None:
    card = logic.Card("c3", "p1", "Payments", "Intro.\n\nShoppers pay by card or by voucher.")
    draft = logic.AnalysisDraft(
        summary="s",
        kind=CardKind.FEATURE,
        personas=["shopper"],
        priority=Priority.P2,
        open_questions=[],
        requirements=[
            logic.DraftRequirement(text="Card payments", quote="shoppers pay with a card"),
            logic.DraftRequirement(text="Voucher payments", quote="paid by voucher"),
        ],
    )
    logic.validate(card)(draft)  # a paraphrase is no reason to ask again
    spans = [r.source_span for r in logic.to_analysis(card, draft).requirements]
    assert [card.body[s.start : s.end] for s in spans] == [
        "Shoppers pay by card or by voucher."
    ] * 2
    with pytest.raises(ValueError, match="no requirement given"):
        logic.validate(card)(draft.model_copy(update={"requirements": []}))
    # A card whose reader found requirements needs none from the model, and a guess with no
    # place in its text is not added to them.
    stated = stated_card(1)
    logic.validate(stated)(draft.model_copy(update={"requirements": []}))
    hallucinated = draft.model_copy(
        update={"requirements": [logic.DraftRequirement(text="Pay by crypto", quote="bitcoin")]}
    )
    assert [r.author_id for r in logic.to_analysis(stated, hallucinated).requirements] == ["FR-001"]


def test_the_prompt_carries_the_structure_inside_one_fence() -> None:
    (system, user) = logic.messages(stated_card(2))
    content = user["content"]
    assert "Place in document: Audit log spec > Requirements" in content
    assert "- Audit record: One change someone made." in content
    assert "- [R1] (FR-001) System MUST keep audit record 1." in content
    assert content.count("<card>") == 1
    assert content.count("</card>") == 1
    assert "NOT already in" in system["content"]


def test_the_offline_draft_without_a_reader_keeps_every_ask_and_no_question() -> None:
    body = "\n".join(f"- Users can export report {n}" for n in range(30)) + "\n- Which format? TBD"
    card = logic.Card("c4", "p1", "Exports", body)
    analysis = logic.to_analysis(card, logic.offline_draft(card))
    assert len(analysis.requirements) == 30
    assert analysis.open_questions == ["Which format? TBD"]


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("P0", Priority.P1),
        ("MUST", Priority.P1),
        ("Must have", Priority.P1),
        ("Should-have", Priority.P2),
        ("Medium", Priority.P2),
        ("Could have", Priority.P3),
        ("Won't have", Priority.P3),
        ("MAY", Priority.P3),
        ("someday", None),
    ],
)
def test_author_priorities_map_to_the_backlogs(written: str, expected: Priority | None) -> None:
    assert logic.priority_of(written) is expected


def test_author_criteria_travel_with_their_requirement() -> None:
    body = "As a shopper, I want to save my cart."
    criterion = AcceptanceCriterion(
        given="a cart", when="I leave", then="it is kept", text="Given a cart..."
    )
    stated = StatedRequirement(
        text=body,
        source_span=SourceSpan(start=0, end=len(body)),
        form=StatementForm.USER_STORY,
        acceptance_criteria=[criterion],
        section="User Story 1",
    )
    card = logic.Card("c5", "p1", "Saved cart", body, 0, DocumentContext(requirements=[stated]))
    (requirement,) = logic.to_analysis(card, logic.offline_draft(card)).requirements
    assert requirement.acceptance_criteria == [criterion]
    assert requirement.section == "User Story 1"


@pytest.mark.parametrize(
    "worst", ["-" + " " * 199_999, "1." + " " * 199_999 + "x", "." + " " * 199_999 + "a"]
)
def test_segments_are_linear_on_their_worst_input(worst: str) -> None:
    started = time.process_time()
    segments(worst)
    elapsed = time.process_time() - started
    print(f"segments on {len(worst)} characters: {elapsed:.4f} s")
    assert elapsed < 0.5

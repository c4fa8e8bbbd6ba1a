"""The quality report, computed in code: junk, coverage, testable criteria, duplicates,
oversized items and open questions, on small real excerpts."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest

from contracts.backlog import (
    AcceptanceCriterion,
    CardAnalysis,
    CardKind,
    OpenQuestion,
    Priority,
    Requirement,
    SourceSpan,
)
from services.gateway.quality import (
    MAX_STORY_POINTS,
    MAX_SUBTASK_HOURS,
    MIN_EPIC_TITLE_WORDS,
    AnalysedCard,
    Citation,
    RequirementRow,
    build_report,
    coverage,
    duplicate_groups,
    junk_category,
    junk_reason,
    open_questions,
    untestable_reason,
)
from services.gateway.quality import TitledItem as Titled
from tests.unit.gateway_samples import epic, story, subtask

# --- junk: the real examples of issue 11 -----------------------------------------------------

JUNK = [
    ("> Priority: P0 — Core feature, required for MVP", "markup"),
    ("**Given** a settings file exists in the project root", "markup"),
    ("**SC-001**: Teams with 3+ developers adopt it in their first week", "markup"),
    ("| FR-01 | Users can reset their password | P0 |", "markup"),
    ("# Functional Requirements", "markup"),
    ("```python", "markup"),
    ("**Input**: User description: build an app that tracks jobs", "metadata"),
    ("Version 0.9, owner: Operations Product", "metadata"),
    ("Status: Draft", "metadata"),
    ("Date: 2024-03-01", "metadata"),
    ("Author: Jane Doe", "metadata"),
    (
        "Which wording do we use for commercial versus residential customers? TBD with Sales",
        "question",
    ),
    ("Should dispatchers see cancelled jobs?", "question"),
    ("Offline sync limits [NEEDS CLARIFICATION: how many days?]", "question"),
    ("Day", "fragment"),
    ("This document describes the first release of the", "fragment"),
    ("The of scheduling board", "fragment"),
    ("Success Criteria", "fragment"),
    ("The system must support the following:", "fragment"),
    ("and the technician signs", "fragment"),
    # From `make demo`'s own backlog.
    ("Duplicate work orders for the same equipment within 48 hours must be", "fragment"),
    ("A contract lists the sites, the equipment and the number of visits per", "fragment"),
    ("Be attached by customers from the web portal", "fragment"),
    ("Be shown before", "fragment"),
    ("Managers receive a weekly list of certifications expiring in the next", "fragment"),
]

GOOD = [
    "See my jobs for the day on my phone",
    "Reset a forgotten password by email",
    "Dispatcher assigns a job to the nearest qualified technician",
    "Technician records the parts used on a job",
    "Customers get an SMS when the technician is on the way",
    "Export the monthly invoices as PDF",
    "Add the parts table and its migration",
    "Write API tests for the job list endpoint",
    "Document the invoicing workflow",
    "Work order intake",
    # From `make demo`'s own backlog: a quoted phrase, a phrasal verb at the end.
    'The "on the way" message must include a live ETA link that expires after the visit.',
    "Parts used are picked from the van's stock list; a part not in stock can be typed in.",
    "Reply STOP to opt out of SMS; the opt-out must be honoured immediately",
]


def test_an_epic_may_be_named_by_one_word_a_story_may_not() -> None:
    assert junk_reason("Reporting", min_words=MIN_EPIC_TITLE_WORDS) is None
    assert junk_reason("Reporting") == "fragment: too short (1 word)"


@pytest.mark.parametrize(("text", "category"), JUNK)
def test_each_junk_reason_on_real_examples(text: str, category: str) -> None:
    reason = junk_reason(text)
    assert reason is not None, text
    assert junk_category(reason) == category, reason


@pytest.mark.parametrize("text", GOOD)
def test_real_good_titles_are_not_junk(text: str) -> None:
    assert junk_reason(text) is None


@pytest.mark.parametrize("char", [" ", "[", "*", "|", "?", "a", "the ", "**", "`"])
def test_junk_reason_is_linear_on_200k_repeats(char: str) -> None:
    text = "x" + char * 200_000 + "y"
    started = time.process_time()
    junk_reason(text)
    elapsed = time.process_time() - started
    print(f"junk_reason on 200,000 {char!r}: {elapsed:.3f} s")
    assert elapsed < 1.0


# --- coverage --------------------------------------------------------------------------------


def test_coverage_counts_only_the_authors_requirements_and_no_junk_story() -> None:
    rows = [RequirementRow(f"c1:R{n}", "c1") for n in (1, 2, 3, 4)]
    stories = [
        Citation("s1", "See my jobs for the day on my phone", ["c1:R1", "c1:R1"]),
        Citation("s2", "> Priority: P0 — Core feature, required for MVP", ["c1:R2"]),
        Citation("s3", "Reset a forgotten password by email", ["epic:invented", "c1:R3"]),
    ]
    count, citing, junk_citing = coverage(rows, stories)
    assert (count.covered, count.total, count.share) == (2, 4, 0.5)
    assert [c.story_id for c in citing["c1:R1"]] == ["s1"]
    assert "c1:R2" not in citing
    assert [c.story_id for c in junk_citing["c1:R2"]] == ["s2"]
    assert "epic:invented" not in citing


def test_coverage_of_nothing_is_unknown_not_full() -> None:
    count, _, _ = coverage([], [Citation("s1", "See my jobs", ["c1:R1"])])
    assert (count.covered, count.total, count.share) == (0, 0, None)


# --- testable criteria -----------------------------------------------------------------------


def test_a_specific_outcome_is_testable() -> None:
    s = story("s1", "e", 0, "See my jobs for the day")
    assert untestable_reason(s) is None


def test_no_criteria_no_then_and_restating_the_title_are_untestable() -> None:
    title = "See my jobs for the day on my phone"
    none = story("s1", "e", 0, title, acceptance_criteria=[])
    assert untestable_reason(none) == "no acceptance criteria"
    empty = story(
        "s2", "e", 0, title, acceptance_criteria=[AcceptanceCriterion(given="a", when="b", then="")]
    )
    assert untestable_reason(empty) == "no criterion has a 'then'"
    restated = story(
        "s3",
        "e",
        0,
        title,
        acceptance_criteria=[
            AcceptanceCriterion(
                given="a user who needs this",
                when="they use it",
                then="the outcome matches the requirement: see my jobs for the day",
            )
        ],
    )
    assert untestable_reason(restated) == "the criteria only restate the title"


# --- duplicates ------------------------------------------------------------------------------


def test_same_title_and_near_duplicates_group_but_neighbours_do_not() -> None:
    items = [
        Titled("story", "a", "See my jobs for the day on my phone"),
        Titled("story", "b", "See my **jobs** for the day, on my phone!"),
        Titled("story", "c", "Export the backlog as CSV"),
        Titled("story", "d", "Export the backlog as JSON"),
        Titled("story", "e", "Technician sees the jobs for the day on the phone"),
        Titled("story", "f", "Technicians see jobs for the day on their phones"),
    ]
    groups = duplicate_groups(items)
    by_ids = {tuple(sorted(i.id for i in g.items)): g for g in groups}
    assert set(by_ids) == {("a", "b"), ("e", "f")}
    assert by_ids["a", "b"].reason == "same_title"
    assert by_ids["e", "f"].reason == "similar"
    assert by_ids["e", "f"].similarity >= 0.8


def test_subtasks_of_other_kinds_are_near_duplicates_only_when_titled_the_same() -> None:
    title = "Record arrival, start, pause and completion times with one tap each"
    items = [
        Titled("subtask", "t1", f"Test: {title}", "test"),
        Titled("subtask", "t2", f"Document: {title}", "docs"),
        Titled("subtask", "t3", f"Tests: {title}", "test"),
        Titled("subtask", "t4", f"document: {title}!", "dev"),
    ]
    groups = {tuple(sorted(i.id for i in g.items)): g.reason for g in duplicate_groups(items)}
    assert groups == {("t1", "t3"): "similar", ("t2", "t4"): "same_title"}


WORDS = [f"w{n:04d}" for n in range(3000)]


def _title(rng: random.Random) -> str:
    return " ".join(rng.sample(WORDS, 7))


def test_duplicates_of_2000_stories_are_near_linear() -> None:
    rng = random.Random(11)
    titles = [_title(rng) for _ in range(2000)]
    # 20 planted near-duplicates: a word added, 7 of 8 words and 6 of 7 word pairs shared.
    planted = {n: f"{titles[n]} extra{n}" for n in range(0, 2000, 100)}
    items = [Titled("story", f"s{n}", t) for n, t in enumerate(titles)]
    items += [Titled("story", f"dup{n}", t) for n, t in planted.items()]
    started = time.process_time()
    groups = duplicate_groups(items)
    elapsed = time.process_time() - started
    print(f"duplicates among {len(items)} stories: {elapsed:.3f} s, {len(groups)} groups")
    found = {tuple(sorted(i.id for i in g.items)) for g in groups}
    assert found == {tuple(sorted((f"s{n}", f"dup{n}"))) for n in planted}
    assert elapsed < 2.0


# --- open questions and the whole report -----------------------------------------------------

BODY = (
    "Technicians see their jobs for the day on their phone.\n"
    "Which wording do we use for commercial versus residential customers? TBD\n"
)


def analysed(card_id: str = "c1", **extra: Any) -> AnalysedCard:
    question = "Which wording do we use for commercial versus residential customers?"
    start = BODY.index(question)
    fields: dict[str, Any] = {
        "card_id": card_id,
        "summary": "Jobs on the phone.",
        "kind": CardKind.FEATURE,
        "personas": ["technician"],
        "requirements": [
            Requirement(
                id=f"{card_id}:R1",
                text="Technicians see their jobs for the day on their phone.",
                source_span=SourceSpan(start=0, end=55),
                author_id="FR-01",
            ),
            Requirement(
                id=f"{card_id}:R2",
                text="> Priority: P0 — Core feature",
                source_span=SourceSpan(start=0, end=10),
            ),
        ],
        "priority": Priority.P1,
        "open_questions": [question, "Is offline mode in scope?"],
        "questions": [
            OpenQuestion(text=question, source_span=SourceSpan(start=start, end=start + 70))
        ],
    }
    return AnalysedCard(card_id, "Mobile app", CardAnalysis(**(fields | extra)))


def test_open_questions_keep_their_span_and_card() -> None:
    questions = open_questions([analysed()])
    assert [(q.card_id, q.card_title) for q in questions] == [("c1", "Mobile app")] * 2
    first, second = questions
    assert first.source_span is not None
    assert BODY[first.source_span.start :].startswith("Which wording")
    assert second.text == "Is offline mode in scope?"
    assert second.source_span is None


def test_report_counts_and_lists() -> None:
    stories = [
        story("s1", "e1", 0, "See my jobs for the day", requirement_ids=["c1:R1"]),
        story("s2", "e1", 1, "See my jobs for the day", requirement_ids=["c1:R1"]),
        story(
            "s3",
            "e1",
            2,
            "> Priority: P0 — Core feature",
            requirement_ids=["c1:R2"],
            estimate_points=MAX_STORY_POINTS + 5,
            acceptance_criteria=[],
        ),
    ]
    subtasks = [
        subtask("t1", "s1", 0, "Build the job list API"),
        subtask("t2", "s1", 1, "Build the job list API"),
        subtask("t3", "s2", 0, "Build the job list API", estimate_hours=MAX_SUBTASK_HOURS + 1),
    ]
    report = build_report("p1", [analysed()], [epic("e1", 0, "Mobile app")], stories, subtasks)
    c = report.counts
    assert (report.coverage.covered, report.coverage.total, report.coverage.share) == (1, 2, 0.5)
    assert [r.requirement_id for r in report.uncovered] == ["c1:R2"]
    assert [s.story_id for s in report.uncovered[0].junk_stories] == ["s3"]
    covered = report.requirements[0]
    assert (covered.author_id, [s.story_id for s in covered.stories]) == ("FR-01", ["s1", "s2"])
    assert [u.story_id for u in report.untestable] == ["s3"]
    # s1/s2 share a title; t1/t2 share one within s1; t3 sits in another story.
    assert c.duplicate_groups == 2
    assert c.duplicates == 2
    subtask_group = next(d for d in report.duplicates if d.kind == "subtask")
    assert subtask_group.story_id == "s1"
    assert {(j.kind, j.id) for j in report.junk} == {("story", "s3"), ("requirement", "c1:R2")}
    assert c.junk_by_category == {"markup": 2}
    assert [(o.kind, o.id) for o in report.oversized] == [("story", "s3"), ("subtask", "t3")]
    assert c.open_questions == 2
    assert report.model_dump(mode="json")["coverage"]["share"] == 0.5


def test_report_lists_are_bounded_and_paged() -> None:
    many = [
        story(f"s{n}", "e1", n, f"Story number {n} for jobs", requirement_ids=[]) for n in range(7)
    ]
    first = build_report("p1", [], [], many, [], offset=0, limit=3)
    rest = build_report("p1", [], [], many, [], offset=6, limit=3)
    assert first.counts.stories_without_requirement == 7
    assert [s.story_id for s in first.stories_without_requirement] == ["s0", "s1", "s2"]
    assert [s.story_id for s in rest.stories_without_requirement] == ["s6"]
    whole = build_report("p1", [], [], many, [], limit=None)
    assert len(whole.stories_without_requirement) == 7


def test_common_words_do_not_make_the_search_quadratic() -> None:
    # Every word is shared by hundreds of titles: no word is rare enough to find candidates
    # by, so the search stays bounded (exact titles are still found by their normalised form).
    rng = random.Random(3)
    common = WORDS[:30]
    items = [Titled("story", f"s{n}", " ".join(rng.sample(common, 6))) for n in range(2000)]
    items.append(Titled("story", "copy", items[0].title.upper()))
    started = time.process_time()
    groups = duplicate_groups(items)
    elapsed = time.process_time() - started
    print(f"duplicates among 2,001 stories of 30 words: {elapsed:.3f} s")
    assert any({i.id for i in g.items} >= {"s0", "copy"} for g in groups)
    assert elapsed < 2.0


def test_report_of_2000_stories_prints_its_time() -> None:
    rng = random.Random(5)
    stories = [
        story(f"s{n}", "e1", n, _title(rng), requirement_ids=[f"c1:R{n % 2 + 1}"])
        for n in range(2000)
    ]
    subtasks = [subtask(f"t{n}", f"s{n // 4}", n % 4, _title(rng)) for n in range(8000)]
    started = time.process_time()
    report = build_report("p1", [analysed()], [], stories, subtasks)
    elapsed = time.process_time() - started
    print(f"quality report of 2,000 stories and 8,000 subtasks: {elapsed:.3f} s")
    assert report.counts.stories == 2000
    assert (report.coverage.covered, report.coverage.total) == (2, 2)
    assert elapsed < 5.0

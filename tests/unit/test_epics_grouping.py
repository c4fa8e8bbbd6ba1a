"""Epics group requirements by the document's own structure: the headings that name
something, the words requirements share, neighbours first; near-linear on large scopes."""

from __future__ import annotations

import time

import pytest

from contracts.backlog import CardAnalysis, CardKind, Priority, Requirement, SourceSpan
from services.epics import grouping, logic


def card(
    card_id: str, title: str, path: list[str], texts: list[str], position: int
) -> logic.AnalysedCard:
    requirements = [
        Requirement(id=f"{card_id}:R{n}", text=t, source_span=SourceSpan(start=0, end=1))
        for n, t in enumerate(texts, start=1)
    ]
    analysis = CardAnalysis(
        card_id=card_id,
        summary=title,
        kind=CardKind.FEATURE,
        personas=["user"],
        requirements=requirements,
        priority=Priority.P2,
        open_questions=[],
        heading_path=path,
    )
    return logic.AnalysedCard(card_id, title, analysis, position)


SPEC = "Feature Specification: Photo Albums"
SPEC_KIT = [
    card(
        "us1",
        "User Story 1 - Create an album (Priority: P1)",
        [SPEC, "User Scenarios & Testing"],
        ["As a photographer, I want to create an album of my photos"],
        0,
    ),
    card(
        "us2",
        "User Story 2 - Share an album (Priority: P2)",
        [SPEC, "User Scenarios & Testing"],
        ["As a photographer, I want to share an album with a link"],
        1,
    ),
    card(
        "fr",
        "Functional Requirements",
        [SPEC, "Requirements"],
        [
            "System MUST let users create an album with a name",
            "System MUST let users add photos when they create an album",
            "System MUST let users reorder photos of an album they create",
            "System MUST let users rename an album they created",
            "System MUST let users share an album link that anyone can open",
            "System MUST expire shared album links after 30 days",
            "System MUST let users revoke a shared album link",
            "System MUST show who opened a shared link",
            "System MUST keep an audit trail of deletions",
        ],
        2,
    ),
    card(
        "sc",
        "Measurable Outcomes",
        [SPEC, "Success Criteria"],
        [
            "95% of photographers finish creating an album in under 1 minute",
        ],
        3,
    ),
]


def test_container_headings_name_nothing_and_leads_are_dropped() -> None:
    assert grouping.heading_name("User Story 1 - Create an album (Priority: P1)") == (
        "Create an album"
    )
    assert grouping.heading_name("Requirement 3: Job scheduling") == "Job scheduling"
    assert grouping.heading_name("3.2 Offline mode") == "Offline mode"
    assert grouping.heading_name(SPEC) == "Photo Albums"
    for container in ("Functional Requirements", "## Success Criteria", "User Scenarios & Testing"):
        assert grouping.heading_name(container.lstrip("# ")) == ""


def test_a_container_cards_requirements_join_the_topic_they_share_words_with() -> None:
    epics = logic.group("p1", SPEC_KIT)
    by_title = {g.title: set(g.requirement_ids) for g in epics}
    assert {"us1:R1", "fr:R1"} <= by_title["Create an album"]
    assert {"us2:R1", "fr:R5", "fr:R6"} <= by_title["Share an album"]
    every = sorted(i for g in epics for i in g.requirement_ids)
    assert every == sorted(r.id for c in SPEC_KIT for r in c.analysis.requirements)


def test_a_small_document_is_one_epic_named_by_its_title() -> None:
    small = [SPEC_KIT[0], SPEC_KIT[1], SPEC_KIT[3]]
    (epic,) = logic.group("p1", small)
    assert epic.title == "Photo Albums"


def test_the_same_requirements_give_the_same_epics_whatever_the_order() -> None:
    first = logic.group("p1", SPEC_KIT)
    assert first == logic.group("p1", list(reversed(SPEC_KIT)))
    for g in first:
        assert g.epic_id == grouping.epic_id("p1", g.requirement_ids)


PRD = "Field Service App"
FEATURES = [
    card("a", "Create jobs", [PRD, "Scheduling"], ["Dispatchers can create a job", "x y z"], 0),
    card("b", "Assign jobs", [PRD, "Scheduling"], ["Dispatchers can assign a job"], 1),
    card("c", "Job list", [PRD, "Mobile app"], ["Technicians see today's jobs on the phone"], 2),
    card("d", "Photos", [PRD, "Mobile app"], ["Technicians attach photos to a job"], 3),
]


def test_sections_under_one_naming_heading_become_that_epic() -> None:
    epics = logic.group("p1", FEATURES)
    assert [(g.title, g.card_ids) for g in epics] == [
        ("Scheduling", ("a", "b")),
        ("Mobile app", ("c", "d")),
    ]


def test_tracker_records_under_one_epic_name_stay_together() -> None:
    rows = [
        card(f"r{n}", f"Row {n} summary", ["Billing"], [f"Invoice thing {n}"], n) for n in range(9)
    ]
    (epic,) = logic.group("p1", rows)
    assert epic.title == "Billing"
    assert len(epic.requirement_ids) == 9


def test_no_merge_grows_past_the_maximum() -> None:
    rows = [card(f"r{n}", f"Row {n}", ["Billing"], [f"Invoice {n}"], n) for n in range(40)]
    sizes = [len(g.requirement_ids) for g in logic.group("p1", rows)]
    assert sum(sizes) == 40
    assert max(sizes) <= grouping.MAX_REQUIREMENTS


def test_the_offline_epic_names_its_heading_and_the_authors_priority() -> None:
    (first, *_) = logic.group("p1", FEATURES)
    requirements = logic.covered(FEATURES, first.requirement_ids)
    high = requirements[0].model_copy(update={"priority": Priority.P1, "author_priority": "P0"})
    draft = logic.offline_draft(first.title, FEATURES, [high, *requirements[1:]])
    assert draft.title == "Scheduling"
    assert draft.goal.startswith("Deliver Scheduling: Dispatchers can create a job")
    assert draft.priority is Priority.P1
    epic = logic.to_epic("p1", first.epic_id, 0, FEATURES, requirements, draft)
    assert epic.card_ids == ["a", "b"]
    assert epic.requirement_ids == list(first.requirement_ids)


@pytest.mark.parametrize("cards_count", [400, 2000])
def test_grouping_is_near_linear(cards_count: int) -> None:
    words = (
        *("alpha", "beta", "gamma", "delta", "epsilon", "zeta"),
        *("theta", "kappa", "lambda", "sigma", "omega"),
    )
    cards = []
    for n in range(cards_count):
        texts = [
            f"Users can {words[n % 11]} the {words[(n * 7 + k) % 11]} report {n}" for k in range(3)
        ]
        path = ["Big spec", f"Area {n // 50}"]
        container = n % 5 == 0
        cards.append(card(f"c{n}", "Requirements" if container else f"Feature {n}", path, texts, n))
    started = time.process_time()
    epics = logic.group("p1", cards)
    elapsed = time.process_time() - started
    print(f"{cards_count} cards ({cards_count * 3} requirements) grouped in {elapsed:.2f} s")
    assert sum(len(g.requirement_ids) for g in epics) == cards_count * 3
    assert elapsed < 2.0


@pytest.mark.parametrize(
    "worst",
    [
        "story" + " " * 100_000 + "x",
        "(" * 200_000,
        "Requirement 1" + " (p" * 50_000,
        "1." * 100_000,
    ],
)
def test_heading_names_are_linear_on_their_worst_input(worst: str) -> None:
    started = time.process_time()
    grouping.heading_name(worst)
    elapsed = time.process_time() - started
    print(f"heading_name on {len(worst)} characters: {elapsed:.4f} s")
    assert elapsed < 0.5


# BjornMelin/ai-docs-vector-db-hybrid-scraper states its throughput target twice, sections apart.
RESTATED_PRD = "AI Documentation Scraper - Product Requirements Document"
RESTATED = [
    card(
        "nfr",
        "Performance Requirements",
        [RESTATED_PRD, "4. Product Requirements Specification", "4.2 Non-Functional"],
        ["Throughput: Support 1000+ concurrent users", "Latency: P95 search under 100ms"],
        0,
    ),
    card(
        "crawl",
        "Document Crawling",
        [RESTATED_PRD, "4. Product Requirements Specification", "4.1 Functional"],
        [
            "Crawl documentation sites from a sitemap",
            "Re-crawl changed pages nightly",
            "Store each page with its source URL",
            "Respect robots.txt on every site",
        ],
        1,
    ),
    card(
        "sla",
        "Benchmarks & SLAs",
        [RESTATED_PRD, "7. Quality Assurance", "7.2 Performance Requirements"],
        ["Throughput: 1000+ concurrent users", "Memory: under 4 GB per worker"],
        2,
    ),
]


def test_a_restated_requirement_joins_the_epic_of_its_first_statement() -> None:
    epics = logic.group("p1", RESTATED)
    home = {rid: g.epic_id for g in epics for rid in g.requirement_ids}
    assert home["sla:R1"] == home["nfr:R1"]
    assert home["sla:R2"] != home["nfr:R1"] or len(epics) == 1
    every = sorted(i for g in epics for i in g.requirement_ids)
    assert every == sorted(r.id for c in RESTATED for r in c.analysis.requirements)
    # The epic's id follows the set it now covers.
    for g in epics:
        assert g.epic_id == grouping.epic_id("p1", g.requirement_ids)

"""Grouping by meaning with an LLM: the prompt shows short handles, the schema allows only
handles that exist, and an answer is held to the rules before it becomes epics; an epic's id
follows from the set it covers."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from services.epics import app as epics_app
from services.epics import grouping, llm_grouping, logic
from services.runtime.llm.answers import InvalidAnswer, check
from services.runtime.settings import Settings
from tests.unit.test_epics_grouping import SPEC_KIT, card

EpicGrouping = llm_grouping.EpicGrouping
ProposedEpic = llm_grouping.ProposedEpic

BILLING = [
    card("b", "Billing", ["PRD", "Billing"], ["Send an invoice every month", "Refund a charge"], 0),
    card("o", "Offline", ["PRD", "Offline mode"], ["Work without a network", "Sync later"], 1),
    card(
        "n",
        "Non-Functional Requirements",
        ["PRD", "Non-Functional Requirements"],
        ["Invoices are generated within 2 s", "Sync resumes after 30 s offline"],
        2,
    ),
]


def listed_of(cards: list[logic.AnalysedCard]) -> list[llm_grouping.Listed]:
    return llm_grouping.listing(logic.in_scope(cards))


def proposal(*epics: tuple[str, list[str]]) -> EpicGrouping:
    return EpicGrouping(epics=[ProposedEpic(title=t, requirements=r) for t, r in epics])


def test_listing_numbers_requirements_in_document_order_with_their_section() -> None:
    listed = listed_of(list(reversed(BILLING)))
    assert [i.handle for i in listed] == [f"R{n}" for n in range(1, 7)]
    assert [i.requirement_id for i in listed] == ["b:R1", "b:R2", "o:R1", "o:R2", "n:R1", "n:R2"]
    assert [i.section for i in listed[:3]] == ["Billing", "Billing", "Offline"]
    # A container heading names nothing: the requirement's own card title is shown as is.
    assert listed[4].section == "Non-Functional Requirements"
    prompt = llm_grouping.messages(listed)[1]["content"]
    assert "[R1] (Billing) Send an invoice every month" in prompt
    assert "[R5] (Non-Functional Requirements) Invoices are generated within 2 s" in prompt
    assert "<requirements>" in prompt
    assert "6 requirements" in prompt


def test_a_long_requirement_is_shortened_in_the_prompt() -> None:
    long = card("l", "Search", ["PRD", "Search"], ["Search " + "very " * 200 + "fast"], 0)
    (item,) = listed_of([long])
    assert len(item.text) <= llm_grouping.TEXT_CHARS
    assert item.text.endswith("…")


def test_the_schema_allows_only_handles_that_exist() -> None:
    listed = listed_of(BILLING)
    schema = llm_grouping.schema(listed)
    items = schema["$defs"]["ProposedEpic"]["properties"]["requirements"]["items"]
    assert items == {"type": "string", "enum": ["R1", "R2", "R3", "R4", "R5", "R6"]}
    # Bounded lists: a grammar built from the schema cannot let a model repeat itself.
    assert schema["properties"]["epics"]["maxItems"] == 3
    assert schema["$defs"]["ProposedEpic"]["properties"]["requirements"]["maxItems"] == 6


def test_the_output_budget_grows_with_the_scope_and_is_capped() -> None:
    assert llm_grouping.output_budget(19) == 256 + 24 * 19
    assert llm_grouping.output_budget(1000) == llm_grouping.MAX_OUTPUT_TOKENS
    listed = listed_of(BILLING)
    request = llm_grouping.llm_request(listed, logic.group("p1", BILLING))
    assert request.max_output_tokens == llm_grouping.output_budget(6)
    # The pydantic model itself stays open: the narrowing is the request's, checked locally.
    assert "enum" not in json.dumps(EpicGrouping.model_json_schema())


def test_a_partition_passes_the_check() -> None:
    listed = listed_of(BILLING)
    llm_grouping.check(
        listed, proposal(("Billing", ["R1", "R2", "R5"]), ("Offline mode", ["R3", "R4", "R6"]))
    )


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (proposal(("A", ["R1", "R2", "R3"]), ("B", ["R4", "R5"])), "in no epic: R6"),
        (
            proposal(("A", ["R1", "R2", "R3"]), ("B", ["R3", "R4", "R5", "R6"])),
            "in more than one epic: R3",
        ),
        (proposal(("A", ["R1", "R2", "R3", "R9"]), ("B", ["R4", "R5", "R6"])), "unknown"),
        (
            proposal(("A", ["R1"]), ("B", ["R2"]), ("C", ["R3"]), ("D", ["R4", "R5", "R6"])),
            "4 epics for 6 requirements (at most 3)",
        ),
        (proposal(("  ", ["R1", "R2", "R3"]), ("B", ["R4", "R5", "R6"])), "without a title"),
    ],
)
def test_an_answer_breaking_a_rule_is_refused_with_the_reason(
    answer: EpicGrouping, reason: str
) -> None:
    with pytest.raises(ValueError, match="^.*" + reason.replace("(", r"\(").replace(")", r"\)")):
        llm_grouping.check(listed_of(BILLING), answer)


def test_an_oversized_epic_is_refused_and_a_long_list_of_handles_is_cut() -> None:
    many = [card("m", "Search", ["PRD", "Search"], [f"Search rule {n}" for n in range(60)], 0)]
    listed = listed_of(many)
    everything = proposal(("All", [i.handle for i in listed]))
    with pytest.raises(ValueError, match="1 epics cover more than 24"):
        llm_grouping.check(listed, everything)
    half = proposal(("Half", [i.handle for i in listed[:20]]))
    with pytest.raises(ValueError, match=r"in no epic: R21, .*, R28 and 32 more"):
        llm_grouping.check(listed, half)


def test_a_checked_answer_becomes_epics_by_meaning_with_ids_from_their_sets() -> None:
    listed = listed_of(BILLING)
    answer = proposal(("Offline mode", ["R6", "R3", "R4"]), ("Billing", ["R5", "R1", "R2"]))
    groups = llm_grouping.to_groupings("p1", listed, answer)
    assert [g.title for g in groups] == ["Billing", "Offline mode"]
    assert groups[0].requirement_ids == ("b:R1", "b:R2", "n:R1")
    assert groups[0].card_ids == ("b", "n")
    assert groups[1].requirement_ids == ("o:R1", "o:R2", "n:R2")
    assert groups[0].epic_id == grouping.epic_id("p1", ["n:R1", "b:R2", "b:R1"])
    again = llm_grouping.to_groupings("p1", listed, answer)
    assert [g.epic_id for g in again] == [g.epic_id for g in groups]


def test_the_offline_draft_is_the_structure_grouping_and_passes_the_check() -> None:
    cards = SPEC_KIT
    listed = listed_of(cards)
    structure = logic.group("p1", cards)
    request = llm_grouping.llm_request(listed, structure)
    draft = check(request, request.offline())
    assert llm_grouping.to_groupings("p1", listed, draft) == [
        grouping.Grouping(g.epic_id, g.title, g.requirement_ids, g.card_ids) for g in structure
    ]


def test_the_request_validates_answers_and_keys_the_cache_by_the_texts() -> None:
    listed = listed_of(BILLING)
    request = llm_grouping.llm_request(listed, logic.group("p1", BILLING))
    with pytest.raises(InvalidAnswer, match="in no epic"):
        check(request, proposal(("A", ["R1", "R2", "R3"])))
    # Another project's cards with the same texts ask the same question: one cache entry.
    renamed = [
        card(
            f"x{c.card_id}",
            c.title,
            c.analysis.heading_path,
            [r.text for r in c.analysis.requirements],
            c.position,
        )
        for c in BILLING
    ]
    other = llm_grouping.llm_request(listed_of(renamed), logic.group("p2", renamed))
    assert other.cache_input == request.cache_input
    assert other.messages == request.messages


def test_scopes_too_small_or_too_large_for_one_call_are_left_to_the_structure() -> None:
    assert not llm_grouping.worth_asking(len(listed_of(BILLING[:1])))
    assert llm_grouping.worth_asking(len(listed_of(BILLING)))
    huge = [card("h", "Search", ["PRD"], [f"rule {n}" for n in range(301)], 0)]
    assert not llm_grouping.worth_asking(len(listed_of(huge)))


@pytest.mark.parametrize(
    ("setting", "offline", "asks"),
    [("llm", False, True), ("structure", False, False), ("llm", True, False)],
)
def test_the_llm_groups_only_when_one_is_configured_and_the_setting_allows(
    setting: str, offline: bool, asks: bool
) -> None:
    stage = SimpleNamespace(
        settings=Settings(epics_grouping=setting), llm=SimpleNamespace(offline=offline)
    )
    assert epics_app._by_llm(stage) is asks  # type: ignore[arg-type]

"""JSON uploads: simple card shapes, GitHub issues, Trello boards and broken files."""

from __future__ import annotations

import json
import time

import pytest

from services.gateway.ingest.model import CardDraft, UploadError, UploadLimits
from services.gateway.ingest.records import read_json
from services.gateway.problems import PROBLEMS


def read(text: str, name: str = "cards.json") -> list[CardDraft]:
    return read_json(text, file_name=name, limits=UploadLimits())


def refused(text: str) -> UploadError:
    with pytest.raises(UploadError) as caught:
        read(text)
    error = caught.value
    assert error.status == PROBLEMS[error.code].status
    return error


def fields(cards: list[CardDraft]) -> list[tuple[str, str, str | None]]:
    return [(card.title, card.body, card.external_id) for card in cards]


def spans_point_into_bodies(cards: list[CardDraft]) -> None:
    for card in cards:
        assert card.document is not None
        for requirement in card.document.requirements:
            span = requirement.source_span
            assert 0 <= span.start < span.end <= len(card.body)


# --- simple shapes -------------------------------------------------------------------------


def test_json_array_of_objects_with_key_synonyms() -> None:
    data = [
        {"title": "Login", "body": "Users log in", "external_id": "c-1"},
        {"Name": "Export", "Description": "to CSV", "id": 42},
        {"summary": None, "text": "Derived title here. More."},
        {},
        "A plain string card.",
    ]
    assert fields(read(json.dumps(data))) == [
        ("Login", "Users log in", "c-1"),
        ("Export", "to CSV", "42"),
        ("Derived title here", "Derived title here. More.", None),
        ("A plain string card", "A plain string card.", None),
    ]


def test_json_cards_object_is_accepted() -> None:
    cards = read('{"cards": [{"title": "a", "body": "b"}], "other": 1}')
    assert fields(cards) == [("a", "b", None)]


def test_json_record_fields_reach_the_document_context() -> None:
    data = [
        {
            "key": "REQ-7",
            "title": "Export invoices",
            "description": "Finance exports invoices as CSV.",
            "priority": {"name": "High"},
            "epic": "Billing",
            "acceptance_criteria": ["Given an invoice, when I export, then I get a CSV file"],
            "labels": ["finance"],
        }
    ]
    (card,) = read(json.dumps(data))
    assert card.document is not None
    assert card.document.heading_path == ["Billing"]
    (requirement,) = card.document.requirements
    assert (requirement.author_id, requirement.author_priority) == ("REQ-7", "High")
    (criterion,) = requirement.acceptance_criteria
    assert (criterion.given, criterion.when, criterion.then) == (
        "an invoice",
        "I export",
        "I get a CSV file",
    )
    spans_point_into_bodies([card])


def test_criteria_already_written_in_the_body_are_not_appended_again() -> None:
    body = "Finance exports invoices.\n\n- The file is CSV\n- Totals match the ledger"
    data = [
        {
            "title": "Export",
            "body": body,
            "criteria": ["The file is CSV", "Totals match the ledger"],
        }
    ]
    (card,) = read(json.dumps(data))
    assert card.body == body
    assert card.document is not None
    assert [c.text for c in card.document.requirements[0].acceptance_criteria] == [
        "The file is CSV",
        "Totals match the ledger",
    ]


def test_a_card_whose_criteria_cannot_fit_is_refused_before_they_are_parsed() -> None:
    text = json.dumps([{"title": "t", "body": "word " * 400_000, "criteria": ["x"] * 1_000_000}])
    started = time.process_time()
    with pytest.raises(UploadError) as caught:
        read(text)
    elapsed = time.process_time() - started
    print(f"1,000,000 criteria and a 2 MB body: {elapsed:.3f} s")
    assert (caught.value.code, caught.value.status) == ("card_too_long", 422)
    assert "item [0] ('t')" in caught.value.detail
    assert elapsed < 1.0


def test_criteria_within_the_limit_are_all_kept() -> None:
    data = [{"title": "t", "body": "b", "criteria": [f"rule {i}" for i in range(1000)]}]
    (card,) = read_json(json.dumps(data), file_name=None, limits=UploadLimits())
    assert card.document is not None
    assert len(card.document.requirements[0].acceptance_criteria) == 1000
    with pytest.raises(UploadError):
        read_json(json.dumps(data), file_name=None, limits=UploadLimits(max_card_chars=1000))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('[{"title": "a",}]', "not valid JSON"),
        ('{"title": "a", "body": "b"}', "Expected a JSON array"),
        ('{"cards": {"title": "a"}}', "got an object"),
        ("42", "got a number"),
        ('[{"title": "a"}, 7]', "item [1] is a number"),
        ('{"cards": [null]}', "item cards[0] is null"),
        ('[{"title": ["a"]}]', "'title' is an array"),
        ('[{"title": "a", "body": true}]', "'body' is a boolean"),
        ("[" * 100_000 + "]" * 100_000, "JSON"),
    ],
)
def test_json_of_the_wrong_shape_is_invalid_with_the_reason(text: str, reason: str) -> None:
    error = refused(text)
    assert (error.code, error.status) == ("input_invalid", 422)
    assert reason in error.detail


def test_invalid_json_names_its_line_and_column() -> None:
    error = refused('[\n  {"title": "a"},\n  {"title": "b" "body": "c"}\n]')
    assert "at line 3, column 17" in error.detail
    assert (error.extra["line"], error.extra["column"]) == (3, 17)


def test_objects_with_no_accepted_key_are_refused_naming_their_keys() -> None:
    error = refused('[{"foo": 1, "bar": "x"}, {"baz": 2}]')
    assert (error.code, error.status) == ("input_invalid", 422)
    assert "'bar', 'baz', 'foo'" in error.detail
    assert error.extra["keys"] == ["bar", "baz", "foo"]
    assert "summary" in error.extra["accepted"]["title"]


def test_json_empty_array_or_blank_cards_give_no_drafts() -> None:
    assert read("[]") == []
    assert read('[{"title": "", "body": "  "}]') == []


# --- GitHub issues -------------------------------------------------------------------------

# As GET /repos/{owner}/{repo}/issues returns them (fields trimmed; a pull request included).
GITHUB_ISSUES = [
    {
        "url": "https://api.github.com/repos/octo/app/issues/12",
        "html_url": "https://github.com/octo/app/issues/12",
        "number": 12,
        "title": "Export the report as PDF",
        "user": {"login": "octocat"},
        "labels": [
            {"id": 1, "name": "enhancement", "color": "a2eeef"},
            {"id": 2, "name": "priority: high", "color": "d93f0b"},
        ],
        "state": "open",
        "milestone": {"number": 3, "title": "v2.0", "state": "open"},
        "body": (
            "Managers need to share the monthly report.\r\n\r\n"
            "## Acceptance Criteria\r\n"
            "- [ ] Given a report, when I click Export, then a PDF downloads\r\n"
            "- [ ] The PDF keeps the charts\r\n"
        ),
    },
    {
        "html_url": "https://github.com/octo/app/pull/13",
        "number": 13,
        "title": "Add PDF export",
        "labels": [],
        "state": "open",
        "milestone": None,
        "body": "Closes #12",
        "pull_request": {"url": "https://api.github.com/repos/octo/app/pulls/13"},
    },
    {
        "html_url": "https://github.com/octo/app/issues/9",
        "number": 9,
        "title": "Page loads in under 2 s",
        "labels": [{"name": "performance"}, {"name": "P1"}],
        "state": "closed",
        "milestone": None,
        "body": None,
    },
]


def test_github_issues_keep_number_labels_milestone_and_skip_pull_requests() -> None:
    cards = read(json.dumps(GITHUB_ISSUES), "issues.json")
    assert [(c.title, c.external_id) for c in cards] == [
        ("Export the report as PDF", "#12"),
        ("Page loads in under 2 s", "#9"),
    ]
    export, speed = (card.document for card in cards)
    assert export is not None
    assert speed is not None
    assert export.heading_path == ["v2.0"]
    assert export.metadata == {"State": "open", "Labels": "enhancement, priority: high"}
    (requirement,) = export.requirements
    assert (requirement.author_id, requirement.author_priority) == ("#12", "high")
    gwt, plain = requirement.acceptance_criteria
    assert (gwt.given, gwt.when, gwt.then) == ("a report", "I click Export", "a PDF downloads")
    assert plain.text == "The PDF keeps the charts"
    assert "\r" not in cards[0].body
    (closed,) = speed.requirements
    assert (closed.author_priority, closed.kind.value) == ("P1", "non_functional")
    assert speed.metadata["State"] == "closed"
    spans_point_into_bodies(cards)


# --- Trello --------------------------------------------------------------------------------

# A board as Trello's "Export as JSON" writes it (fields trimmed).
TRELLO_BOARD = {
    "id": "5f1b",
    "name": "Mobile app",
    "lists": [
        {"id": "L1", "name": "Onboarding", "closed": False},
        {"id": "L2", "name": "Payments", "closed": False},
    ],
    "cards": [
        {
            "id": "C1",
            "idShort": 4,
            "name": "Sign up with Google",
            "desc": "New users sign up with their Google account.",
            "idList": "L1",
            "closed": False,
            "labels": [{"id": "x", "name": "Must have", "color": "red"}],
            "idChecklists": ["K1"],
        },
        {
            "id": "C2",
            "name": "Old idea",
            "desc": "Archived.",
            "idList": "L1",
            "closed": True,
            "labels": [],
        },
        {
            "id": "C3",
            "name": "Pay with Apple Pay",
            "desc": "",
            "idList": "L2",
            "closed": False,
            "labels": [],
        },
    ],
    "checklists": [
        {
            "id": "K1",
            "idCard": "C1",
            "name": "Acceptance",
            "checkItems": [
                {"id": "i1", "name": "Given I am new, when I tap Google, then my account exists"},
                {"id": "i2", "name": "My Google name is my display name"},
            ],
        }
    ],
}


def test_trello_board_lists_are_heading_paths_checklists_criteria_archived_skipped() -> None:
    cards = read(json.dumps(TRELLO_BOARD), "board.json")
    assert [(c.title, c.external_id) for c in cards] == [
        ("Sign up with Google", "C1"),
        ("Pay with Apple Pay", "C3"),
    ]
    signup, pay = (card.document for card in cards)
    assert signup is not None
    assert pay is not None
    assert (signup.heading_path, pay.heading_path) == (["Onboarding"], ["Payments"])
    (requirement,) = signup.requirements
    assert requirement.author_priority == "Must have"
    assert [c.text for c in requirement.acceptance_criteria] == [
        "Given I am new, when I tap Google, then my account exists",
        "My Google name is my display name",
    ]
    assert requirement.acceptance_criteria[0].then == "my account exists"
    assert cards[0].body == (
        "New users sign up with their Google account.\n\nAcceptance criteria:\n"
        "- Given I am new, when I tap Google, then my account exists\n"
        "- My Google name is my display name"
    )
    assert cards[1].body == "Pay with Apple Pay"  # no description: the title is the text
    spans_point_into_bodies(cards)


# --- linear time ---------------------------------------------------------------------------


def test_a_5_mb_body_is_judged_in_linear_time() -> None:
    text = json.dumps([{"title": "big", "body": "word " * 1_000_000}])
    started = time.process_time()
    with pytest.raises(UploadError) as caught:
        read(text)
    elapsed = time.process_time() - started
    print(f"5 MB JSON body: {elapsed:.3f} s")
    assert caught.value.code == "card_too_long"
    assert elapsed < 1.0
    (card,) = read_json(text, file_name=None, limits=UploadLimits(max_card_chars=6_000_000))
    assert len(card.body) == len("word " * 1_000_000) - 1

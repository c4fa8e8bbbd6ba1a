"""CSV/TSV uploads: columns, delimiters, tracker exports (Jira) and broken files."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import pytest

from contracts.backlog import RequirementKind
from contracts.documents import DocumentContext, StatementForm
from services.gateway.ingest.decoding import decode
from services.gateway.ingest.model import CardDraft, UploadError, UploadFormat, UploadLimits
from services.gateway.ingest.tabular import read_csv
from services.gateway.problems import PROBLEMS
from tests.perf.corpus_files import document_path


def read(text: str, name: str = "a.csv", **limits: int) -> list[CardDraft]:
    return read_csv(text, file_name=name, limits=UploadLimits(**limits))


def read_bytes(data: bytes, name: str = "a.csv") -> list[CardDraft]:
    return read(decode(data, UploadFormat.CSV), name)


def refused(text: str, name: str = "a.csv", **limits: int) -> UploadError:
    with pytest.raises(UploadError) as caught:
        read(text, name, **limits)
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


# --- plain sheets ----------------------------------------------------------------------------


def test_csv_finds_columns_by_header_with_synonyms_and_quotes() -> None:
    text = (
        "\ufeffIssue Key,Summary,Description,Priority\r\n"
        "A-1,Login,Users log in,High\r\n"
        ',,,\r\nA-2,"Export, to CSV","multi\r\nline ""quoted"" body",Low\r\n'
    )
    cards = read(text.lstrip("\ufeff"), "jira.csv")
    assert fields(cards) == [
        ("Login", "Users log in", "A-1"),
        ("Export, to CSV", 'multi\nline "quoted" body', "A-2"),
    ]
    assert [card.position for card in cards] == [0, 0]  # the dispatcher numbers them
    first = cards[0].document
    assert first is not None
    assert first.document == "jira.csv"
    (requirement,) = first.requirements
    assert (requirement.form, requirement.author_id, requirement.author_priority) == (
        StatementForm.RECORD,
        "A-1",
        "High",
    )
    assert requirement.text == "Users log in"
    assert cards[0].body[requirement.source_span.start : requirement.source_span.end] == (
        "Users log in"
    )


@pytest.mark.parametrize("delimiter", [";", "\t", "|", ","])
def test_csv_delimiter_is_sniffed_from_the_header(delimiter: str) -> None:
    rows = [["TITLE", "body", "external_id"], ["a, b; c", "x | y\tz", "1"], ["d", "e", "2"]]
    text = "\n".join(
        delimiter.join(f'"{cell}"' if delimiter in cell else cell for cell in row) for row in rows
    )
    assert fields(read(text, "cards.csv")) == [("a, b; c", "x | y\tz", "1"), ("d", "e", "2")]


def test_tsv_prefers_tabs() -> None:
    cards = read("name\tdetails\nLogin, SSO\tfast\n", "cards.tsv")
    assert (cards[0].title, cards[0].body) == ("Login, SSO", "fast")


def test_csv_with_only_a_body_column_derives_titles() -> None:
    cards = read("text\nUsers export reports. Quickly.\n")
    assert (cards[0].title, cards[0].body) == (
        "Users export reports",
        "Users export reports. Quickly.",
    )


def test_csv_rows_with_neither_title_nor_body_are_skipped_and_blank_ids_are_none() -> None:
    cards = read("title,body,id\n,,7\n  ,  ,\nOnly a title,,\n")
    # A card without text keeps its title as its body, so its requirement has a span.
    assert fields(cards) == [("Only a title", "Only a title", None)]
    spans_point_into_bodies(cards)


def test_csv_short_rows_are_tolerated_and_trailing_empty_cells_too() -> None:
    cards = read("title,body\nshort\nlong,body,,\n")
    assert [(c.title, c.body) for c in cards] == [("short", "short"), ("long", "body")]


def test_csv_row_with_more_cells_than_the_header_names_its_row_and_line() -> None:
    error = refused('title,body\n"two\nlines",x\nlong,body,extra,cells\n')
    assert (error.code, error.status) == ("input_invalid", 422)
    assert "CSV row 3 (line 4) has 4 cells but the header has 2 columns" in error.detail
    assert (error.extra["row"], error.extra["line"]) == (3, 4)


def test_csv_without_a_title_or_body_column_is_invalid_naming_the_columns() -> None:
    error = refused("foo,Bar Baz\n1,2\n")
    assert (error.code, error.status) == ("input_invalid", 422)
    assert "'foo', 'Bar Baz'" in error.detail
    assert "summary" in error.detail
    assert "description" in error.detail
    assert error.extra["columns"] == ["foo", "Bar Baz"]
    assert "title" in error.extra["accepted"]["title"]


def test_csv_header_of_thousands_of_columns_is_refused_naming_the_limit() -> None:
    error = refused("title" + ",x" * 2000 + "\na,b\n")
    assert "The CSV header has 2001 columns; at most 2000 are read." in error.detail
    assert read("title" + ",x" * 1999 + "\na,b\n")[0].title == "a"


def test_csv_header_only_has_no_cards() -> None:
    assert read("title,body\n") == []
    assert read("\n\n  \n") == []


def test_csv_in_windows_1252_is_read() -> None:
    data = "title;body\nCaf\u00e9 \u20ac;na\u00efve \u2019quotes\u2019\n".encode("cp1252")
    cards = read_bytes(data, "excel.csv")
    assert (cards[0].title, cards[0].body) == ("Caf\u00e9 \u20ac", "na\u00efve \u2019quotes\u2019")


def test_csv_in_utf16_with_bom_is_read() -> None:
    cards = read_bytes("title\tbody\nL\u00f6sung\tok\n".encode("utf-16"), "excel.csv")
    assert (cards[0].title, cards[0].body) == ("L\u00f6sung", "ok")


def test_whitespace_and_control_characters_are_normalised() -> None:
    text = 'title,body\n"  A \t title\n","line 1   \r\nline\u00a02\x07\r\n\r\n\r\n\r\nline 3"\n'
    cards = read(text)
    assert cards[0].title == "A title"
    assert cards[0].body == "line 1\nline\u00a02\n\nline 3"


def test_overlong_titles_are_shortened_and_kept_whole_in_the_body() -> None:
    long_title = "word " * 60
    cards = read(f"title,body\n{long_title},the body\n")
    assert len(cards[0].title) <= 200
    assert cards[0].title.endswith("…")
    assert cards[0].body == long_title.strip() + "\n\nthe body"
    spans_point_into_bodies(cards)


def test_plain_user_story_sheet_with_criteria_and_moscow_priority() -> None:
    # A user-story sheet as teams keep them in spreadsheets (ID, Story, Acceptance Criteria).
    text = (
        "ID,Epic,User Story,Acceptance Criteria,MoSCoW\n"
        'US-1,Onboarding,"As a new user, I want to sign up with my email so that I can '
        'start a trial.","- Given I am on the sign-up page, when I submit a valid email, then '
        'I receive a confirmation link\n- The link expires after 24 hours",Must\n'
        'US-2,Onboarding,"As an admin, I want to invite teammates.",,Should\n'
    )
    cards = read(text)
    assert [card.external_id for card in cards] == ["US-1", "US-2"]
    assert cards[0].title.startswith("As a new user, I want to sign up")
    first = cards[0].document
    assert first is not None
    assert first.heading_path == ["Onboarding"]
    (requirement,) = first.requirements
    assert requirement.author_priority == "Must"
    gwt, plain = requirement.acceptance_criteria
    assert (gwt.given, gwt.when, gwt.then) == (
        "I am on the sign-up page",
        "I submit a valid email",
        "I receive a confirmation link",
    )
    assert plain.text == "The link expires after 24 hours"
    assert plain.then == ""
    assert "Acceptance criteria:\n- Given I am on the sign-up page" in cards[0].body
    spans_point_into_bodies(cards)


# --- Jira ----------------------------------------------------------------------------------

# Columns as Jira's "Export CSV (all fields)" writes them (classic Epic Link custom fields,
# repeated Labels columns).
JIRA_CLASSIC = (
    "Summary,Issue key,Issue id,Issue Type,Status,Priority,Labels,Labels,Description,"
    "Custom field (Epic Link),Custom field (Epic Name),Custom field (Story Points),"
    "Custom field (Acceptance Criteria)\n"
    "Checkout,SHOP-1,10001,Epic,To Do,High,,,Everything a shopper needs to pay.,,"
    "Checkout,,\n"
    'Guest checkout,SHOP-2,10002,Story,To Do,Highest,checkout,mvp,"As a shopper, I want to '
    'pay without an account, so that I finish quickly.",SHOP-1,,5,"Given a cart with items\n'
    'When I pay as a guest\nAnd I give an email\nThen the order is placed"\n'
    "Checkout is slow,SHOP-3,10003,Bug,In Progress,Medium,performance,,"
    "The payment page takes 6 s to load on 3G.,SHOP-1,,2,\n"
    "Order history,SHOP-4,10004,Story,To Do,Low,,,Shoppers see their past orders.,,,3,\n"
)


def test_jira_epic_rows_group_the_stories_linking_to_them() -> None:
    cards = read(JIRA_CLASSIC, "jira.csv")
    assert [(c.title, c.external_id) for c in cards] == [
        ("Guest checkout", "SHOP-2"),
        ("Checkout is slow", "SHOP-3"),
        ("Order history", "SHOP-4"),
    ]
    guest, slow, history = (card.document for card in cards)
    assert guest is not None
    assert slow is not None
    assert history is not None
    assert guest.heading_path == slow.heading_path == ["Checkout"]
    assert guest.context == "Everything a shopper needs to pay."
    assert history.heading_path == []
    assert guest.metadata == {
        "Issue Type": "Story",
        "Status": "To Do",
        "Custom field (Story Points)": "5",
        "Issue id": "10002",
        "Labels": "checkout, mvp",
    }
    (story,) = guest.requirements
    assert (story.author_id, story.author_priority, story.kind) == (
        "SHOP-2",
        "Highest",
        RequirementKind.FUNCTIONAL,
    )
    assert story.user_story is not None
    assert (story.user_story.as_a, story.user_story.so_that) == ("shopper", "I finish quickly")
    assert story.user_story.i_want.endswith("pay without an account")
    (criterion,) = story.acceptance_criteria
    assert (criterion.given, criterion.when, criterion.then) == (
        "a cart with items",
        "I pay as a guest and I give an email",
        "the order is placed",
    )
    assert criterion.text.startswith("Given a cart with items When I pay")
    assert slow.requirements[0].kind is RequirementKind.NON_FUNCTIONAL
    spans_point_into_bodies(cards)


def test_open_questions_in_a_record_are_its_cards_questions() -> None:
    text = (
        "Summary,Issue key,Description\n"
        'Invoices,FIN-4,"Finance exports invoices. Currency: '
        '[NEEDS CLARIFICATION: EUR only or all currencies?]"\n'
    )
    (card,) = read(text)
    assert card.document is not None
    (question,) = card.document.questions
    assert question.text == "EUR only or all currencies?"
    span = question.source_span
    assert span is not None
    assert card.body[span.start : span.end].startswith("[NEEDS CLARIFICATION")


def test_jira_wiki_description_criteria_section_is_read_in_place() -> None:
    # Jira Server keeps criteria inside the description, in its wiki markup.
    text = (
        "Summary,Issue key,Issue Type,Description\n"
        'Reset password,OPS-9,Story,"Users reset a forgotten password.\n\n'
        "h3. Acceptance Criteria\n"
        "* *Given* a registered email, *when* I ask for a reset, *then* a link is sent\n"
        '* The link works once"\n'
    )
    (card,) = read(text, "jira.csv")
    assert "Acceptance criteria:" not in card.body  # nothing appended: they are in the text
    assert card.document is not None
    (requirement,) = card.document.requirements
    gwt, plain = requirement.acceptance_criteria
    assert (gwt.given, gwt.when, gwt.then) == (
        "a registered email",
        "I ask for a reset",
        "a link is sent",
    )
    assert plain.text == "The link works once"


# Jira Cloud: the parent is named by its issue id (Parent) and its summary (Parent summary).
JIRA_CLOUD = (
    "Issue Type,Issue key,Issue id,Summary,Parent,Parent summary,Priority,Description\n"
    "Epic,APP-1,20001,Notifications,,,Medium,Tell users what changed.\n"
    "Story,APP-2,20002,Email digest,20001,Notifications,High,Users get a daily digest.\n"
    "Sub-task,APP-3,20003,Digest template,20002,Email digest,Medium,HTML and text parts.\n"
    "Sub-task,APP-4,20004,Unsubscribe link,20002,Email digest,High,\n"
    "Epic,APP-5,20005,Dark mode,,,Low,The app follows the system theme.\n"
)


def test_jira_sub_tasks_are_requirements_of_their_parents_card() -> None:
    cards = read(JIRA_CLOUD, "jira.csv")
    # APP-5 is an epic no row links to: still a group, not a requirement.
    assert [c.external_id for c in cards] == ["APP-2"]
    (digest,) = cards
    assert digest.body == (
        "Users get a daily digest.\n\nSub-tasks:\n- APP-3: Digest template — HTML and text parts.\n"
        "- APP-4: Unsubscribe link"
    )
    assert digest.document is not None
    assert digest.document.heading_path == ["Notifications"]
    ids = [(r.author_id, r.text, r.author_priority) for r in digest.document.requirements]
    assert ids == [
        ("APP-2", "Users get a daily digest.", "High"),
        ("APP-3", "APP-3: Digest template — HTML and text parts.", "Medium"),
        ("APP-4", "APP-4: Unsubscribe link", "High"),
    ]
    spans_point_into_bodies(cards)


def test_a_file_of_epics_only_makes_each_epic_a_card() -> None:
    header, epic = JIRA_CLOUD.splitlines()[:2]
    (card,) = read(f"{header}\n{epic}\n", "jira.csv")
    assert (card.title, card.body) == ("Notifications", "Tell users what changed.")
    assert card.document is not None
    assert card.document.heading_path == ["Notifications"]


def test_jira_sub_task_without_its_parent_in_the_file_is_a_card_under_the_parent_name() -> None:
    text = JIRA_CLOUD.splitlines()[0] + "\n" + JIRA_CLOUD.splitlines()[3] + "\n"
    (card,) = read(text, "jira.csv")
    assert card.external_id == "APP-3"
    assert card.document is not None
    assert card.document.heading_path == ["Email digest"]


# --- broken files ----------------------------------------------------------------------------


def test_an_unclosed_quote_is_refused_naming_the_line_where_it_opened() -> None:
    text = 'title,body\nLogin,Users log in\nExport,"Reports to CSV\nSearch,Find by name\n'
    error = refused(text)
    assert (error.code, error.status) == ("input_invalid", 422)
    assert "quote opened on line 3 that is never closed" in error.detail
    assert error.extra["line"] == 3


def test_a_stray_quote_closed_rows_later_is_refused_naming_both_lines() -> None:
    text = 'title,body\nA,"one\nB,two\nC,th"ree\nD,four\n'
    error = refused(text)
    assert "opened on line 2" in error.detail
    assert "line 4" in error.detail


def test_three_well_formed_rows_with_quoted_newlines_stay_three_cards() -> None:
    text = (
        'title,body\nLogin,"Users log in\nwith SSO"\nExport,"Say ""hi"", then go"\n'
        'Search,plain "inner" quotes\n'
    )
    cards = read(text)
    assert [c.title for c in cards] == ["Login", "Export", "Search"]
    assert cards[1].body == 'Say "hi", then go'
    assert cards[2].body == 'plain "inner" quotes'


def test_csv_cell_over_the_csv_modules_own_cap_is_card_too_long() -> None:
    error = refused("title,body\na,b\nc," + "z" * 140_000 + "\n")
    assert (error.code, error.status) == ("card_too_long", 422)
    assert "CSV row 3 (line 3)" in error.detail
    assert error.extra == {"limit": 20_000}


# --- linear time -----------------------------------------------------------------------------


def timed(text: str) -> float:
    started = time.process_time()
    with contextlib.suppress(UploadError):
        read(text)
    return time.process_time() - started


@pytest.mark.parametrize(
    ("label", "text"),
    [
        ("a 5 MB cell", "title,body\na," + "z" * 5_000_000 + "\n"),
        ("200,000 quotes", "title,body\na," + '"' * 200_000 + "\n"),
        ("200,000 quoted cells", "title,body\n" + '"a",' * 200_000 + "\n"),
        ("an unclosed quote then 5 MB", 'title,body\na,"' + "x\n" * 2_500_000),
        ("200,000 glued quotes", "title,body\n" + '"a"b,' * 200_000 + "\n"),
        ("1 MB of delimiters", "title,body\n" + "," * 1_000_000 + "\n"),
        ("a header of 1,000,000 columns", "title" + ",x" * 1_000_000 + "\na,b\n"),
    ],
)
def test_worst_inputs_are_read_in_linear_time(label: str, text: str) -> None:
    elapsed = timed(text)
    print(f"{label}: {elapsed:.3f} s")
    assert elapsed < 1.0


# --- a real export -------------------------------------------------------------------------

CORPUS = Path(__file__).parents[2] / "perf" / "corpus" / "jira-csv-cs4483"
JIRA_EXPORT = document_path("jira-csv-cs4483", "Jira.csv")


@pytest.mark.skipif(
    JIRA_EXPORT is None,
    reason="the fetched Jira export is not on this machine (tests/perf/corpus_files.py)",
)
def test_a_real_jira_cloud_export_keeps_every_non_epic_issue_and_its_criteria() -> None:
    # Jira Cloud "CSV (all fields)": 95 columns, repeated Labels, wiki markup, 7 epics,
    # 28 stories and tasks, 33 sub-tasks (see the corpus' gold.json for its source).
    assert JIRA_EXPORT is not None
    data = JIRA_EXPORT.read_bytes()
    gold = json.loads((CORPUS / "gold.json").read_text(encoding="utf-8"))
    cards = read_bytes(data, "Jira.csv")
    assert len(cards) == 28
    found = [r.author_id for card in cards for r in (card.document or _empty()).requirements]
    assert sorted(str(found_id) for found_id in found) == sorted(
        entry["id"] for entry in gold["requirements"]
    )
    by_id = {card.external_id: card for card in cards}
    testing = by_id["CS4483-54"].document
    assert testing is not None
    assert testing.heading_path == ["Deliverable 2 — Mid-Project Report (Unity Prototype)"]
    criteria = testing.requirements[0].acceptance_criteria
    assert [c.text for c in criteria][:2] == [
        "At least 3 structured playtest sessions OR ≥ 5 documented feedback points.",
        "Design changes are explicitly tracked (before → change → result).",
    ]
    assert len(criteria) == 5
    spans_point_into_bodies(cards)


def _empty() -> DocumentContext:
    return DocumentContext()

"""Splitting uploaded files into cards: formats, encodings, limits and their problems."""

from __future__ import annotations

import json

import pytest

from services.gateway.problems import PROBLEMS, Problem
from services.gateway.uploads import (
    ACCEPTED_EXTENSIONS,
    CardDraft,
    UploadError,
    UploadFormat,
    UploadLimits,
    check_file_size,
    clean_body,
    derive_title,
    detect_format,
    shorten,
    split_upload,
)
from services.runtime.settings import Settings


def split(name: str, text: str | bytes, **limits: int) -> list[CardDraft]:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return split_upload(name, None, data, UploadLimits(**limits))


def titles(cards: list[CardDraft]) -> list[str]:
    return [card.title for card in cards]


def refused(name: str, data: str | bytes, content_type: str | None = None, **limits: int):  # type: ignore[no-untyped-def]
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with pytest.raises(UploadError) as caught:
        split_upload(name, content_type, raw, UploadLimits(**limits))
    error = caught.value
    assert isinstance(error, Problem)
    assert error.status == PROBLEMS[error.code].status
    return error


# --- format detection ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content_type", "expected"),
    [
        ("prd.md", None, UploadFormat.MARKDOWN),
        ("PRD.MARKDOWN", "application/octet-stream", UploadFormat.MARKDOWN),
        ("notes.txt", "text/csv", UploadFormat.TEXT),  # the extension wins over a wrong type
        ("cards.csv", "application/vnd.ms-excel", UploadFormat.CSV),
        ("cards.tsv", None, UploadFormat.CSV),
        ("cards.json", None, UploadFormat.JSON),
        ("C:\\Users\\me\\cards.JSON", None, UploadFormat.JSON),
        ("cards", "application/json; charset=utf-8", UploadFormat.JSON),
        ("", "text/markdown", UploadFormat.MARKDOWN),
        (None, "text/plain", UploadFormat.TEXT),
    ],
)
def test_format_comes_from_the_extension_then_the_content_type(
    name: str | None, content_type: str | None, expected: UploadFormat
) -> None:
    assert detect_format(name, content_type) is expected


@pytest.mark.parametrize(
    ("name", "content_type"),
    [("spec.pdf", "text/plain"), ("spec.docx", None), ("cards", None), ("cards", "image/png")],
)
def test_other_files_are_unsupported_media_types_listing_the_accepted_ones(
    name: str, content_type: str | None
) -> None:
    error = refused(name, "hello", content_type)
    assert (error.code, error.status) == ("unsupported_media_type", 415)
    assert error.extra["accepted"] == list(ACCEPTED_EXTENSIONS)
    for extension in (".md", ".txt", ".csv", ".json"):
        assert extension in error.detail
    if name.endswith(".pdf"):
        assert "'.pdf'" in error.detail


# --- markdown ------------------------------------------------------------------------------

PRD = """\
---
title: Checkout
owner: someone
---
# Checkout PRD

Checkout lets shoppers pay.

## Guest checkout

Shoppers buy without an account.

- ask for an email
- ask for an address

### Acceptance

It works.

## Saved cards

Returning shoppers pay with a stored card.

```md
## Not a heading: inside a code fence
```

## Empty section
"""


def test_markdown_splits_at_the_repeated_level_keeping_deeper_headings_in_the_body() -> None:
    cards = split("prd.md", PRD)
    assert titles(cards) == ["Checkout PRD", "Guest checkout", "Saved cards", "Empty section"]
    intro, guest, saved, empty = cards
    assert intro.body == "Checkout lets shoppers pay."
    assert guest.body == (
        "Shoppers buy without an account.\n\n- ask for an email\n- ask for an address\n\n"
        "### Acceptance\n\nIt works."
    )
    assert "## Not a heading: inside a code fence" in saved.body
    assert empty.body == ""
    assert [card.position for card in cards] == [0, 1, 2, 3]
    assert all(card.external_id is None for card in cards)
    assert "owner" not in "".join(card.body for card in cards)  # front matter is not a card


def test_markdown_title_only_document_heading_is_not_a_card() -> None:
    cards = split("prd.md", "# Product\n\n## A\ntext a\n\n## B\ntext b\n")
    assert titles(cards) == ["A", "B"]


def test_markdown_with_repeated_top_level_headings_splits_there() -> None:
    cards = split("notes.md", "# One\n## detail\nx\n## detail 2\ny\n# Two\nz\n")
    assert titles(cards) == ["One", "Two"]
    assert cards[0].body == "## detail\nx\n## detail 2\ny"


def test_markdown_without_a_repeated_level_splits_at_the_deepest_one() -> None:
    cards = split("doc.md", "# Doc\nintro\n## Only feature\nwhat it does\n")
    assert titles(cards) == ["Doc", "Only feature"]
    assert cards[1].body == "what it does"


def test_markdown_text_before_the_first_heading_is_a_card_with_a_derived_title() -> None:
    cards = split("doc.md", "Some preface. More words.\n\n## A\na\n## B\nb\n")
    assert titles(cards) == ["Some preface", "A", "B"]
    assert cards[0].body == "Some preface. More words."


def test_markdown_heading_markup_is_removed_from_titles() -> None:
    text = "## **Login** with `SSO` ##\nx\n## [Export](https://x.test) to CSV\ny\n"
    assert titles(split("a.md", text)) == ["Login with SSO", "Export to CSV"]


def test_markdown_setext_headings_count() -> None:
    text = (
        "Login\n=====\nusers sign in\n\nExport\n======\nto csv\n\nnot a heading\ncontinued\n---\n"
    )
    cards = split("a.md", text)
    assert titles(cards) == ["Login", "Export"]
    assert cards[1].body == "to csv\n\nnot a heading\ncontinued\n---"


def test_markdown_empty_heading_takes_its_title_from_the_body() -> None:
    cards = split("a.md", "## \nUsers reset passwords. By email.\n## B\nb\n")
    assert titles(cards) == ["Users reset passwords", "B"]


def test_markdown_of_only_bullets_makes_a_card_per_top_level_bullet() -> None:
    text = (
        "- **Login**: users sign in\n"
        "  - with SSO\n"
        "  - with a password\n"
        "- Export reports to CSV. Also to PDF\n"
        "  lazily continued line\n"
        "\n"
        "* [ ] Third item\n"
        "1. Numbered item\n"
    )
    cards = split("list.md", text)
    assert titles(cards) == ["Login", "Export reports to CSV", "Third item", "Numbered item"]
    assert cards[0].body == "**Login**: users sign in\n- with SSO\n- with a password"
    assert cards[1].body == "Export reports to CSV. Also to PDF\nlazily continued line"


def test_markdown_bullets_under_a_heading_stay_in_its_body() -> None:
    cards = split("list.md", "# Features\n- a\n- b\n")
    assert titles(cards) == ["Features"]
    assert cards[0].body == "- a\n- b"


def test_markdown_without_headings_and_with_prose_reads_like_text() -> None:
    cards = split("a.md", "First idea here.\n\nSecond idea:\n\n- detail\n- more\n")
    assert titles(cards) == ["First idea here", "Second idea"]
    assert cards[1].body == "- detail\n- more"


def test_markdown_without_headings_keeps_fenced_code_and_headed_lists_together() -> None:
    text = "Setup\n\n- install\n- run\n\n```\ncode\n\nmore code\n```\n\nLogin\n\nExport\n"
    cards = split("a.md", text)
    assert titles(cards) == ["Setup", "code", "Login", "Export"]
    assert cards[0].body == "- install\n- run"
    assert cards[1].body == "```\ncode\n\nmore code\n```"


def test_text_lone_heading_line_heads_the_next_paragraph_once() -> None:
    text = "Login page\n\nUsers must log in.\n\nSecond paragraph.\n\nA\n\nB\n\nC\n"
    cards = split("a.txt", text)
    assert [(c.title, c.body) for c in cards] == [
        ("Login page", "Users must log in."),
        ("Second paragraph", "Second paragraph."),
        ("A", "A"),
        ("B", "B"),
        ("C", "C"),
    ]


# --- text ----------------------------------------------------------------------------------


def test_text_paragraphs_become_cards_with_heading_like_first_lines_as_titles() -> None:
    text = (
        "Login page\r\nUsers must be able to log in.\r\n\r\n\r\n"
        "The system shall export reports in CSV and PDF formats so that finance can reconcile"
        " them.\n\n"
        "Wrapped paragraph that starts here\nand goes on in lower case.\n"
    )
    cards = split("notes.txt", text)
    assert titles(cards) == [
        "Login page",
        "The system shall export reports in CSV and PDF formats so that finance can…",
        "Wrapped paragraph that starts here and goes on in lower case",
    ]
    assert cards[0].body == "Users must be able to log in."
    assert cards[1].body.startswith("The system shall export reports")
    assert cards[2].body == "Wrapped paragraph that starts here\nand goes on in lower case."
    assert all(len(card.title) <= 80 for card in cards)


def test_text_paragraph_ending_with_a_colon_keeps_the_next_one() -> None:
    cards = split("notes.txt", "Search\nThe app must:\n\n- find by name\n- find by tag\n\nNext.\n")
    assert titles(cards) == ["Search", "Next"]
    assert cards[0].body == "The app must:\n\n- find by name\n- find by tag"


def test_text_single_line_paragraph_is_title_and_body() -> None:
    cards = split("a.txt", "Users can reset their password.\n")
    assert (cards[0].title, cards[0].body) == (
        "Users can reset their password",
        "Users can reset their password.",
    )


# --- CSV -----------------------------------------------------------------------------------


def test_csv_finds_columns_by_header_with_synonyms_and_quotes() -> None:
    text = (
        "\ufeffIssue Key,Summary,Description,Priority\r\n"
        "A-1,Login,Users log in,High\r\n"
        ',,,\r\nA-2,"Export, to CSV","multi\r\nline ""quoted"" body",Low\r\n'
    )
    cards = split("jira.csv", text)
    assert cards == [
        CardDraft("Login", "Users log in", "A-1", 0),
        CardDraft("Export, to CSV", 'multi\nline "quoted" body', "A-2", 1),
    ]


@pytest.mark.parametrize("delimiter", [";", "\t", "|", ","])
def test_csv_delimiter_is_sniffed_from_the_header(delimiter: str) -> None:
    rows = [["TITLE", "body", "external_id"], ["a, b; c", "x | y\tz", "1"], ["d", "e", "2"]]
    text = "\n".join(
        delimiter.join(f'"{cell}"' if delimiter in cell else cell for cell in row) for row in rows
    )
    cards = split("cards.csv", text)
    assert [(c.title, c.body, c.external_id) for c in cards] == [
        ("a, b; c", "x | y\tz", "1"),
        ("d", "e", "2"),
    ]


def test_tsv_prefers_tabs() -> None:
    cards = split("cards.tsv", "name\tdetails\nLogin, SSO\tfast\n")
    assert (cards[0].title, cards[0].body) == ("Login, SSO", "fast")


def test_csv_with_only_a_body_column_derives_titles() -> None:
    cards = split("a.csv", "text\nUsers export reports. Quickly.\n")
    assert (cards[0].title, cards[0].body) == (
        "Users export reports",
        "Users export reports. Quickly.",
    )


def test_csv_rows_with_neither_title_nor_body_are_skipped_and_blank_ids_are_none() -> None:
    cards = split("a.csv", "title,body,id\n,,7\n  ,  ,\nOnly a title,,\n")
    assert cards == [CardDraft("Only a title", "", None, 0)]


def test_csv_ragged_rows_are_tolerated() -> None:
    cards = split("a.csv", "title,body\nshort\nlong,body,extra,cells\n")
    assert [(c.title, c.body) for c in cards] == [("short", ""), ("long", "body")]


def test_csv_without_a_title_or_body_column_is_invalid_naming_the_columns() -> None:
    error = refused("a.csv", "foo,bar\n1,2\n")
    assert (error.code, error.status) == ("input_invalid", 422)
    assert "'foo'" in error.detail
    assert "title" in error.detail
    assert error.extra["columns"] == ["foo", "bar"]


def test_csv_header_only_has_no_cards() -> None:
    error = refused("a.csv", "title,body\n")
    assert (error.code, error.status) == ("no_cards", 422)


def test_csv_in_windows_1252_is_read() -> None:
    data = "title;body\nCaf\u00e9 \u20ac;na\u00efve \u2019quotes\u2019\n".encode("cp1252")
    cards = split("excel.csv", data)
    assert (cards[0].title, cards[0].body) == ("Caf\u00e9 \u20ac", "na\u00efve \u2019quotes\u2019")


def test_csv_in_utf16_with_bom_is_read() -> None:
    cards = split("excel.csv", "title\tbody\nL\u00f6sung\tok\n".encode("utf-16"))
    assert (cards[0].title, cards[0].body) == ("L\u00f6sung", "ok")


# --- JSON ----------------------------------------------------------------------------------


def test_json_array_of_objects_with_key_synonyms() -> None:
    data = [
        {"title": "Login", "body": "Users log in", "external_id": "c-1"},
        {"Name": "Export", "Description": "to CSV", "id": 42},
        {"summary": None, "text": "Derived title here. More."},
        {},
        "A plain string card.",
    ]
    cards = split("cards.json", json.dumps(data))
    assert cards == [
        CardDraft("Login", "Users log in", "c-1", 0),
        CardDraft("Export", "to CSV", "42", 1),
        CardDraft("Derived title here", "Derived title here. More.", None, 2),
        CardDraft("A plain string card", "A plain string card.", None, 3),
    ]


def test_json_cards_object_is_accepted() -> None:
    cards = split("cards.json", '{"cards": [{"title": "a", "body": "b"}], "other": 1}')
    assert cards == [CardDraft("a", "b", None, 0)]


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
    error = refused("cards.json", text)
    assert (error.code, error.status) == ("input_invalid", 422)
    assert reason in error.detail


def test_json_empty_array_has_no_cards() -> None:
    assert refused("cards.json", "[]").code == "no_cards"
    assert refused("cards.json", '[{"title": "", "body": "  "}]').code == "no_cards"


# --- ids -----------------------------------------------------------------------------------


def test_duplicate_external_ids_are_invalid_naming_both_places() -> None:
    error = refused("a.csv", "title,id\na,X-1\nb,X-2\nc,X-1\n")
    assert error.code == "input_invalid"
    assert "'X-1' is used twice (row 2 and row 4)" in error.detail


def test_overlong_external_id_is_invalid() -> None:
    error = refused("cards.json", json.dumps([{"title": "a", "id": "x" * 201}]))
    assert error.code == "input_invalid"
    assert "200" in error.detail


# --- titles and text normalisation ---------------------------------------------------------


def test_overlong_titles_are_shortened_and_kept_whole_in_the_body() -> None:
    long_title = "word " * 60
    cards = split("cards.json", json.dumps([{"title": long_title, "body": "the body"}]))
    assert len(cards[0].title) <= 200
    assert cards[0].title.endswith("…")
    assert cards[0].body == long_title.strip() + "\n\nthe body"


def test_whitespace_and_control_characters_are_normalised() -> None:
    text = 'title,body\n"  A \t title\n","line 1   \r\nline\u00a02\x07\r\n\r\n\r\n\r\nline 3"\n'
    cards = split("a.csv", text)
    assert cards[0].title == "A title"
    assert cards[0].body == "line 1\nline\u00a02\n\nline 3"


def test_text_is_nfc_normalised() -> None:
    cards = split("a.txt", "Cafe\u0301 menu\nMore\n")
    assert cards[0].title == "Caf\u00e9 menu"


def test_markdown_marks_are_kept_in_titles_of_other_formats() -> None:
    cards = split("a.csv", "title,body\n__init__ **fix**,x\n,`code` [a](b) rest\n")
    assert titles(cards) == ["__init__ **fix**", "`code` [a](b) rest"]
    cards = split("a.md", "## __init__ **fix**\nx\n## B\n`code` [a](b) rest\n")
    assert titles(cards) == ["init fix", "B"]
    assert titles(split("a.txt", "`code` [a](b) rest.\n")) == ["`code` [a](b) rest"]


def test_a_body_without_words_still_gives_a_title() -> None:
    cards = split("cards.json", json.dumps([{"body": "**"}, {"body": "**__**"}]))
    assert titles(cards) == ["**", "**__**"]
    assert titles(split("a.md", "## \n**\n## B\nb\n")) == ["**", "B"]


def test_helpers() -> None:
    assert shorten("short", 10) == "short"
    assert shorten("one two three four", 10) == "one two…"
    assert shorten("x" * 20, 10) == "x" * 9 + "…"
    assert derive_title("\n\n- **Bold** item. Rest") == "Bold item"
    assert derive_title("## Heading\ntext") == "Heading"
    assert derive_title("Ends with ellipsis...") == "Ends with ellipsis..."
    assert derive_title("") == ""
    assert derive_title("item\n---\nmore") == "item"
    assert derive_title("`a` *b*", markdown=False) == "`a` *b*"
    assert clean_body("a\r\nb\rc\f") == "a\nb\nc"


# --- encodings and binary files ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "hint"),
    [
        ("spec.txt", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "PDF"),
        ("cards.csv", b"PK\x03\x04\x14\x00\x06\x00", "ZIP"),
        ("notes.md", b"\x89PNG\r\n\x1a\n\x00\x00", "PNG"),
        ("notes.txt", b"hello\x00world", "NUL"),
        ("notes.md", b"caf\xe9 au lait", "UTF-8"),
        ("cards.json", b'[{"title": "caf\xe9"}]', "UTF-8"),
        ("notes.txt", b"\x81\x8d\x8f\x90\x9d", "Windows-1252"),
        ("notes.txt", bytes(range(1, 9)) * 20 + b"some text", "control characters"),
        ("notes.txt", b"\xff\xfeA\x00\x00", "UTF-16"),
    ],
)
def test_binary_or_undecodable_files_are_unreadable(name: str, data: bytes, hint: str) -> None:
    error = refused(name, data)
    assert (error.code, error.status) == ("unreadable_file", 415)
    assert hint in error.detail


def test_utf8_bom_and_a_stray_control_character_are_fine() -> None:
    cards = split("a.md", b"\xef\xbb\xbf## Caf\xc3\xa9\nbody\x1a\n## B\nb\n")
    assert titles(cards) == ["Caf\u00e9", "B"]
    assert cards[0].body == "body"


def test_markdown_in_windows_1252_is_refused_but_text_is_read() -> None:
    data = "Caf\u00e9 menu\nMore\n".encode("cp1252")
    assert refused("a.md", data).code == "unreadable_file"
    assert split("a.txt", data)[0].title == "Caf\u00e9 menu"


# --- limits --------------------------------------------------------------------------------


def test_default_limits_match_the_settings() -> None:
    assert UploadLimits() == UploadLimits(5 * 1024 * 1024, 2000, 20_000)
    assert UploadLimits.from_settings(Settings()) == UploadLimits()
    settings = Settings(upload_max_file_bytes=10, upload_max_cards=2, upload_max_card_chars=5)
    assert UploadLimits.from_settings(settings) == UploadLimits(10, 2, 5)
    assert Settings().upload_max_concurrent == 3


def test_too_large_file_is_413_naming_the_limit() -> None:
    error = refused("a.txt", b"x" * (5 * 1024 * 1024 + 1))
    assert (error.code, error.status) == ("upload_too_large", 413)
    assert "5 MB (5242880 bytes)" in error.detail
    assert error.extra == {"limit": 5 * 1024 * 1024}
    assert split("a.txt", b"x" * 100, max_file_bytes=100)  # at the limit is fine


def test_size_check_for_chunked_reads() -> None:
    limits = UploadLimits(max_file_bytes=1536)
    check_file_size(1536, limits)
    with pytest.raises(UploadError) as caught:
        check_file_size(1537, limits)
    assert "1.5 KB (1536 bytes)" in caught.value.detail


def test_too_many_cards_is_413_naming_the_limit() -> None:
    text = "title\n" + "".join(f"card {i}\n" for i in range(4))
    assert len(split("a.csv", text, max_cards=4)) == 4
    error = refused("a.csv", text + "one more\n", max_cards=4)
    assert (error.code, error.status) == ("too_many_cards", 413)
    assert "4 cards" in error.detail
    assert error.extra == {"limit": 4}


def test_blank_rows_do_not_count_toward_the_card_limit() -> None:
    assert len(split("a.csv", "title\na\n,\n\nb\n", max_cards=2)) == 2


def test_card_over_the_character_limit_is_422_naming_the_card() -> None:
    text = "## Short\nok\n## Long one\n" + "y" * 50 + "\n"
    error = refused("a.md", text, max_card_chars=40)
    assert (error.code, error.status) == ("card_too_long", 422)
    assert error.detail == (
        "Card 2 (line 3, 'Long one') has 58 characters; the limit is 40 per card. Split it."
    )
    assert error.title == "Card too long"
    assert error.extra == {"limit": 40, "position": 1, "card_title": "Long one", "length": 58}
    assert len(split("a.md", text, max_card_chars=58)) == 2


def test_csv_cell_over_the_csv_modules_own_cap_is_card_too_long() -> None:
    error = refused("a.csv", "title,body\na,b\nc," + "z" * 140_000 + "\n")
    assert (error.code, error.status) == ("card_too_long", 422)
    assert "CSV row 3" in error.detail
    assert error.extra == {"limit": 20_000}


def test_card_too_long_names_the_csv_row() -> None:
    error = refused("a.csv", "title,body\na,b\nc," + "z" * 30 + "\n", max_card_chars=20)
    assert "row 3" in error.detail


@pytest.mark.parametrize("name", ["a.md", "a.txt", "a.csv", "a.json", "empty.md"])
@pytest.mark.parametrize("data", [b"", b"   \r\n\n\t\n", b"\xef\xbb\xbf"])
def test_empty_files_have_no_cards(name: str, data: bytes) -> None:
    error = refused(name, data)
    assert (error.code, error.status) == ("no_cards", 422)


def test_errors_render_as_problems() -> None:
    error = refused("a.csv", "title\n" + "x\n" * 3, max_cards=2)
    body = error.to_body("/v1/projects/p/uploads")
    assert body["type"] == "https://cardflow.dev/problems/too_many_cards"
    assert body["status"] == 413
    assert body["limit"] == 2
    assert body["instance"] == "/v1/projects/p/uploads"

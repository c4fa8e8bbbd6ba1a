"""Splitting uploaded files into cards: formats, limits, ids and their problems, whatever the
reader (Markdown and text reading: tests/unit/ingest/test_document.py)."""

from __future__ import annotations

import json

import pytest

from contracts.uploads import ACCEPTED_EXTENSIONS, UNKNOWN_CONTENT_TYPE, content_type_of
from services.gateway.ingest import (
    CardDraft,
    UploadError,
    UploadFormat,
    UploadLimits,
    check_file_size,
    detect_format,
    split_upload,
)
from services.gateway.ingest.normalise import clean_body, derive_title, shorten
from services.gateway.problems import PROBLEMS, Problem
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


@pytest.mark.parametrize("extension", ACCEPTED_EXTENSIONS)
def test_the_content_type_a_client_sends_is_read_as_the_extension_s_format(
    extension: str,
) -> None:
    # contracts.uploads is shared with the command line: whatever type it sends a file as,
    # the gateway reads that type (without the name) as the name's format.
    sent = content_type_of(f"notes{extension.upper()}")
    assert sent != UNKNOWN_CONTENT_TYPE
    assert detect_format(None, sent) is detect_format(f"notes{extension}", None)


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


# --- ids -----------------------------------------------------------------------------------


def test_duplicate_external_ids_are_invalid_naming_both_places() -> None:
    error = refused("a.csv", "title,id\na,X-1\nb,X-2\nc,X-1\n")
    assert error.code == "input_invalid"
    assert "'X-1' is used twice (row 2 (line 2) and row 4 (line 4))" in error.detail


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
    cards = split("a.txt", "# Cafe\u0301 menu\n\n- The menu must list every dish.\n")
    assert cards[0].title == "Caf\u00e9 menu"


def test_markdown_marks_are_kept_in_titles_of_other_formats() -> None:
    cards = split("a.csv", "title,body\n__init__ **fix**,x\n,`code` [a](b) rest\n")
    assert titles(cards) == ["__init__ **fix**", "`code` [a](b) rest"]
    cards = split("a.md", "## __init__ **fix**\n- x must y\n## B\n- `code` [a](b) must rest\n")
    assert titles(cards) == ["init fix", "B"]


def test_a_body_without_words_still_gives_a_title() -> None:
    cards = split("cards.json", json.dumps([{"body": "**"}, {"body": "**__**"}]))
    assert titles(cards) == ["**", "**__**"]


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
    assert split("a.txt", b"x" * 100, max_file_bytes=100)  # at the limit is fine (one card)


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
    text = "title,body\nShort,ok\nLong one," + "y" * 50 + "\n"
    error = refused("a.csv", text, max_card_chars=40)
    assert (error.code, error.status) == ("card_too_long", 422)
    assert error.detail.startswith("The card at row 3 (line 3) ('Long one') has more than 40")
    assert error.title == "Card too long"
    assert error.extra == {"limit": 40, "card_title": "Long one"}
    assert len(split("a.csv", text, max_card_chars=58)) == 2


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

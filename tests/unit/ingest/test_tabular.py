"""CSV/TSV uploads: columns, delimiters, tracker exports and broken files."""

from __future__ import annotations

import pytest

from services.gateway.problems import PROBLEMS, Problem
from services.gateway.uploads import CardDraft, UploadError, UploadLimits, split_upload


def split(name: str, text: str | bytes, **limits: int) -> list[CardDraft]:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return split_upload(name, None, data, UploadLimits(**limits))


def refused(name: str, data: str | bytes, **limits: int) -> UploadError:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with pytest.raises(UploadError) as caught:
        split_upload(name, None, raw, UploadLimits(**limits))
    error = caught.value
    assert isinstance(error, Problem)
    assert error.status == PROBLEMS[error.code].status
    return error


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


def test_csv_cell_over_the_csv_modules_own_cap_is_card_too_long() -> None:
    error = refused("a.csv", "title,body\na,b\nc," + "z" * 140_000 + "\n")
    assert (error.code, error.status) == ("card_too_long", 422)
    assert "CSV row 3" in error.detail
    assert error.extra == {"limit": 20_000}

"""Decoding uploaded bytes: UTF-8, UTF-16, Windows-1252, broken UTF-8 and binary files."""

from __future__ import annotations

import time

import pytest

from services.gateway.ingest.decoding import decode
from services.gateway.ingest.model import UploadError, UploadFormat

CSV, TEXT, MARKDOWN, JSON = (
    UploadFormat.CSV,
    UploadFormat.TEXT,
    UploadFormat.MARKDOWN,
    UploadFormat.JSON,
)


def refused(data: bytes, fmt: UploadFormat) -> UploadError:
    with pytest.raises(UploadError) as caught:
        decode(data, fmt)
    return caught.value


@pytest.mark.parametrize(
    ("fmt", "data", "hint"),
    [
        (TEXT, b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "PDF"),
        (CSV, b"PK\x03\x04\x14\x00\x06\x00", "ZIP"),
        (MARKDOWN, b"\x89PNG\r\n\x1a\n\x00\x00", "PNG"),
        (TEXT, b"hello\x00world", "NUL"),
        (MARKDOWN, b"caf\xe9 au lait", "UTF-8"),
        (JSON, b'[{"title": "caf\xe9"}]', "UTF-8"),
        (TEXT, b"\x81\x8d\x8f\x90\x9d", "Windows-1252"),
        (TEXT, bytes(range(1, 9)) * 20 + b"some text", "control characters"),
        (TEXT, b"\xff\xfeA\x00\x00", "UTF-16"),
    ],
)
def test_binary_or_undecodable_files_are_unreadable(
    fmt: UploadFormat, data: bytes, hint: str
) -> None:
    error = refused(data, fmt)
    assert (error.code, error.status) == ("unreadable_file", 415)
    assert hint in error.detail


def test_utf8_bom_and_a_stray_control_character_are_kept_for_cleaning() -> None:
    assert decode(b"\xef\xbb\xbf## Caf\xc3\xa9\nbody\x1a\n", MARKDOWN) == "## Caf\u00e9\nbody\x1a\n"


def test_utf16_with_a_bom_is_read() -> None:
    assert decode("title\tbody\nL\u00f6sung\tok\n".encode("utf-16"), CSV) == (
        "title\tbody\nL\u00f6sung\tok\n"
    )


def test_windows_1252_without_any_utf8_sequence_is_read_as_csv_or_text_only() -> None:
    data = "title;body\nCaf\u00e9 \u20ac;na\u00efve \u2019quotes\u2019\n".encode("cp1252")
    assert decode(data, CSV) == "title;body\nCaf\u00e9 \u20ac;na\u00efve \u2019quotes\u2019\n"
    assert decode(data, TEXT).startswith("title;body\nCaf\u00e9")
    assert refused(data, MARKDOWN).code == "unreadable_file"


def test_mostly_utf8_with_a_few_bad_bytes_is_422_naming_the_offset_not_mojibake() -> None:
    good = "title,body\nCaf\u00e9,cr\u00e8me br\u00fbl\u00e9e for \u00c5sa\n".encode()
    data = good + b"Na\xefve,bad byte\n" + "R\u00e9sum\u00e9,ok\n".encode()
    error = refused(data, CSV)
    assert (error.code, error.status) == ("unreadable_file", 422)
    offset = len(good) + 2
    assert f"byte offset {offset} (line 3)" in error.detail
    assert "1 invalid byte sequence," in error.detail
    assert error.extra == {"offset": offset, "line": 3, "invalid_sequences": 1}


def test_the_offset_counts_the_bom_bytes() -> None:
    data = b"\xef\xbb\xbf" + "caf\u00e9 ".encode() + b"\xff"
    error = refused(data, JSON)
    assert error.status == 422
    assert data[error.extra["offset"]] == 0xFF


def test_a_genuine_replacement_character_is_not_counted_as_a_bad_byte() -> None:
    data = "ok \ufffd \u00e9 ".encode() + b"\xff\xfe"[1:] + b" and \x80"
    error = refused(data, TEXT)
    assert error.extra["invalid_sequences"] == 2


def test_a_5_mb_file_with_bad_bytes_is_judged_in_linear_time() -> None:
    data = "\u00e9t\u00e9 ".encode() * 1_000_000 + b"\xff"
    started = time.process_time()
    error = refused(data, CSV)
    elapsed = time.process_time() - started
    print(f"5 MB of UTF-8 with one bad byte: {elapsed:.3f} s")
    assert error.extra["offset"] == len(data) - 1
    assert elapsed < 1.0

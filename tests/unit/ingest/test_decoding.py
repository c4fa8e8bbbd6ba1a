"""Decoding uploaded bytes: UTF-8, UTF-16, Windows-1252, binary files."""

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


def titles(cards: list[CardDraft]) -> list[str]:
    return [card.title for card in cards]


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

"""JSON uploads: simple card shapes, tracker exports and broken files."""

from __future__ import annotations

import json

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

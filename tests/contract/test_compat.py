"""The compatibility guard can fail: each kind of breaking change is caught, additions are not."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel

from contracts.compat import breaking_changes


def obj(required: tuple[str, ...] = (), **properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required)}


STRING = {"type": "string"}
INTEGER = {"type": "integer"}
NULLABLE_STRING = {"anyOf": [STRING, {"type": "null"}], "default": None}


def test_identical_schemas_have_no_breaking_change() -> None:
    schema = obj(("a",), a=STRING, b=NULLABLE_STRING)
    assert breaking_changes(schema, schema) == []


def test_added_optional_field_is_not_breaking() -> None:
    old = obj(("a",), a=STRING)
    new = obj(("a",), a=STRING, b=NULLABLE_STRING, c={"type": "array", "items": INTEGER})
    assert breaking_changes(old, new) == []


def test_removed_field() -> None:
    assert breaking_changes(obj(a=STRING, b=STRING), obj(a=STRING)) == ["b: field removed"]


def test_string_retyped_to_integer() -> None:
    assert breaking_changes(obj(a=STRING), obj(a=INTEGER)) == [
        "a: type changed from string to integer"
    ]


def test_nullable_string_retyped_to_integer() -> None:
    assert breaking_changes(obj(a=NULLABLE_STRING), obj(a=INTEGER)) == [
        "a: type changed from null|string to integer"
    ]


def test_nullable_field_made_non_null() -> None:
    # Old producers send null; the new schema would reject them.
    assert breaking_changes(obj(a=NULLABLE_STRING), obj(a=STRING)) == [
        "a: type changed from null|string to string"
    ]


def test_nullable_spelled_as_type_list_is_the_same_type() -> None:
    assert breaking_changes(obj(a=NULLABLE_STRING), obj(a={"type": ["string", "null"]})) == []


def test_newly_required_field() -> None:
    old = obj(("a",), a=STRING, b=STRING)
    assert breaking_changes(old, obj(("a", "b"), a=STRING, b=STRING)) == [
        "b: field is newly required"
    ]


def test_new_required_field_is_breaking() -> None:
    assert breaking_changes(obj(a=STRING), obj(("b",), a=STRING, b=STRING)) == [
        "b: field is newly required"
    ]


def test_removed_enum_value() -> None:
    old = obj(a={"type": "string", "enum": ["draft", "ready", "done"]})
    new = obj(a={"type": "string", "enum": ["draft", "done"]})
    assert breaking_changes(old, new) == ['a: enum values removed: "ready"']


def test_added_enum_value_is_not_breaking() -> None:
    old = obj(a={"type": "string", "enum": ["draft"]})
    assert breaking_changes(old, obj(a={"type": "string", "enum": ["draft", "done"]})) == []


# The same checks on what pydantic really emits: $defs/$ref, nested models, arrays, enums.


class Status(StrEnum):
    DRAFT = "draft"
    READY = "ready"


class Criterion(BaseModel):
    text: str
    weight: int = 1


class StoryV1(BaseModel):
    title: str
    status: Status
    kind: Literal["story", "spike"] = "story"
    criteria: list[Criterion] = []
    parent: StoryV1 | None = None


class StatusV2(StrEnum):
    DRAFT = "draft"


class CriterionV2(BaseModel):
    text: str
    weight: float = 1.0  # retyped inside a nested model reached through list items and $ref


class StoryV2(BaseModel):
    title: str
    status: StatusV2
    kind: Literal["story"] = "story"
    criteria: list[CriterionV2] = []
    parent: StoryV2 | None = None
    points: int | None = None  # added, optional: fine


def test_pydantic_models_nested_refs_arrays_enums_and_recursion() -> None:
    old, new = StoryV1.model_json_schema(), StoryV2.model_json_schema()
    assert breaking_changes(old, old) == []
    # `parent` is the same definition again: reported once, at its first path, and the
    # recursion ends instead of looping.
    assert sorted(breaking_changes(old, new)) == [
        "criteria[].weight: type changed from integer to number",
        'kind: enum values removed: "spike"',
        'status: enum values removed: "ready"',
    ]


def test_removed_field_in_nested_model_is_named_by_path() -> None:
    class Inner(BaseModel):
        keep: str
        drop: str

    class Outer(BaseModel):
        inner: Inner | None = None

    class InnerV2(BaseModel):
        keep: str

    class OuterV2(BaseModel):
        inner: InnerV2 | None = None

    assert breaking_changes(Outer.model_json_schema(), OuterV2.model_json_schema()) == [
        "inner.drop: field removed"
    ]


def test_dict_values_are_compared() -> None:
    old = obj(a={"type": "object", "additionalProperties": STRING})
    new = obj(a={"type": "object", "additionalProperties": INTEGER})
    assert breaking_changes(old, new) == ["a.*: type changed from string to integer"]

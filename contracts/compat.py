"""Does a new JSON Schema break readers or writers of an old one? Pure, no I/O.

Published versions are frozen in ``schemas/published/``; a change this reports needs a new
schema version and a new ``.v2`` topic instead (DESIGN.md, "Events on Kafka"). It is a guard,
not a proof: it checks what our pydantic models produce (objects, arrays, nullable unions,
``$ref``/``$defs``, enums), and is deliberately strict where a type changes at all.
"""

from __future__ import annotations

import json
from typing import Any

Schema = dict[str, Any]

_JSON_TYPES: tuple[tuple[type, str], ...] = (
    # bool before int: True is an int in Python but a boolean in JSON.
    (bool, "boolean"),
    (int, "integer"),
    (float, "number"),
    (str, "string"),
    (type(None), "null"),
    (list, "array"),
    (dict, "object"),
)
_ANY = "any"


def breaking_changes(old_schema: Schema, new_schema: Schema) -> list[str]:
    """Human-readable breaking changes from ``old_schema`` to ``new_schema``; [] if none."""
    problems: list[str] = []
    _Walk(old_schema, new_schema, problems).compare(old_schema, new_schema, "", frozenset())
    return problems


class _Walk:
    def __init__(self, old_root: Schema, new_root: Schema, problems: list[str]) -> None:
        self.old_root = old_root
        self.new_root = new_root
        self.problems = problems

    def compare(
        self, old: Schema, new: Schema, path: str, seen: frozenset[tuple[str, str]]
    ) -> None:
        old_branches = _branches(self.old_root, old)
        new_branches = _branches(self.new_root, new)
        # A recursive model refers to itself; stop once this pair of definitions was entered.
        pair = (_ref_names(old_branches), _ref_names(new_branches))
        if pair != ("", "") and pair in seen:
            return
        seen = seen | {pair}

        old_types, new_types = _types(old_branches), _types(new_branches)
        if old_types != new_types:
            # Narrowing rejects old messages, widening surprises old readers: both break.
            self.problems.append(
                f"{_show(path)}: type changed from {_fmt(old_types)} to {_fmt(new_types)}"
            )

        old_enum, new_enum = _enum(old_branches), _enum(new_branches)
        # A fixed set opened to any value of its type is additive, like an added value.
        if old_enum is not None and new_enum is not None:
            removed = sorted(old_enum.keys() - new_enum.keys())
            if removed:
                self.problems.append(f"{_show(path)}: enum values removed: {', '.join(removed)}")
        elif new_enum is not None:
            self.problems.append(f"{_show(path)}: now restricted to {', '.join(sorted(new_enum))}")

        for kind, compare in (("object", self._objects), ("array", self._arrays)):
            old_of_kind = _of_kind(old_branches, kind)
            new_of_kind = _of_kind(new_branches, kind)
            for key, old_branch in old_of_kind.items():
                new_branch = new_of_kind.get(key)
                if new_branch is None and len(old_of_kind) == len(new_of_kind) == 1:
                    # The one object/array of a field may be renamed: compare its shape.
                    new_branch = next(iter(new_of_kind.values()))
                if new_branch is not None:
                    compare(old_branch, new_branch, path, seen)
                elif new_of_kind:
                    self.problems.append(f"{_show(path)}: variant {key} removed")

    def _objects(
        self, old: Schema, new: Schema, path: str, seen: frozenset[tuple[str, str]]
    ) -> None:
        old_props: Schema = old.get("properties", {})
        new_props: Schema = new.get("properties", {})
        for name, old_prop in old_props.items():
            child = f"{path}.{name}" if path else name
            if name not in new_props:
                self.problems.append(f"{child}: field removed")
            else:
                self.compare(old_prop, new_props[name], child, seen)
        for name in sorted(set(new.get("required", ())) - set(old.get("required", ()))):
            child = f"{path}.{name}" if path else name
            self.problems.append(f"{child}: field is newly required")
        old_extra, new_extra = old.get("additionalProperties"), new.get("additionalProperties")
        if isinstance(old_extra, dict) and isinstance(new_extra, dict):
            # dict[str, X]: the values of a map.
            self.compare(old_extra, new_extra, f"{path}.*" if path else "*", seen)

    def _arrays(
        self, old: Schema, new: Schema, path: str, seen: frozenset[tuple[str, str]]
    ) -> None:
        old_items, new_items = old.get("items"), new.get("items")
        if isinstance(old_items, dict) and isinstance(new_items, dict):
            self.compare(old_items, new_items, f"{path}[]", seen)


class _Branch:
    """One alternative of a (possibly nullable) union, with ``$ref`` resolved."""

    __slots__ = ("ref", "schema")

    def __init__(self, schema: Schema, ref: str) -> None:
        self.schema = schema
        self.ref = ref


def _resolve(root: Schema, node: Schema) -> _Branch:
    ref = ""
    # pydantic wraps a $ref in a one-element allOf in some versions; treat both the same.
    while True:
        if "$ref" in node:
            ref = node["$ref"]
            node = _lookup(root, ref)
        elif isinstance(node.get("allOf"), list) and len(node["allOf"]) == 1:
            node = node["allOf"][0]
        else:
            return _Branch(node, ref)


def _lookup(root: Schema, ref: str) -> Schema:
    if not ref.startswith("#"):
        raise ValueError(f"only local $ref is supported, got {ref!r}")
    node: Any = root
    for part in ref.lstrip("#").strip("/").split("/"):
        if part:
            node = node[part.replace("~1", "/").replace("~0", "~")]
    if not isinstance(node, dict):
        raise ValueError(f"$ref {ref!r} does not point at a schema")
    return node


def _branches(root: Schema, node: Schema) -> list[_Branch]:
    branch = _resolve(root, node)
    union = branch.schema.get("anyOf") or branch.schema.get("oneOf")
    if not isinstance(union, list):
        return [branch]
    return [b for member in union for b in _branches(root, member)]


def _branch_types(schema: Schema) -> set[str]:
    declared = schema.get("type")
    if isinstance(declared, str):
        return {declared}
    if isinstance(declared, list):
        return set(declared)
    values = _values(schema)
    if values is not None:
        return {_json_type(v) for v in values}
    if "properties" in schema:
        return {"object"}
    return {_ANY}


def _types(branches: list[_Branch]) -> frozenset[str]:
    return frozenset(t for b in branches for t in _branch_types(b.schema))


def _values(schema: Schema) -> list[Any] | None:
    if "const" in schema:
        return [schema["const"]]
    enum = schema.get("enum")
    return list(enum) if isinstance(enum, list) else None


def _enum(branches: list[_Branch]) -> dict[str, Any] | None:
    """The allowed values (by canonical JSON) when every non-null branch fixes them."""
    allowed: dict[str, Any] = {}
    for branch in branches:
        if _branch_types(branch.schema) == {"null"}:
            continue  # nullability is a type question, reported as such
        values = _values(branch.schema)
        if values is None:
            return None
        allowed.update((json.dumps(v, sort_keys=True), v) for v in values)
    return allowed or None


def _of_kind(branches: list[_Branch], kind: str) -> dict[str, Schema]:
    # Keyed by definition name so a union of models pairs each model with its successor.
    found: dict[str, Schema] = {}
    for branch in branches:
        if kind in _branch_types(branch.schema):
            key = branch.ref.rsplit("/", 1)[-1] or branch.schema.get("title") or kind
            found[str(key)] = branch.schema
    return found


def _ref_names(branches: list[_Branch]) -> str:
    return "|".join(sorted(b.ref for b in branches if b.ref))


def _json_type(value: Any) -> str:
    for python_type, name in _JSON_TYPES:
        if isinstance(value, python_type):
            return name
    return _ANY


def _show(path: str) -> str:
    return path or "(root)"


def _fmt(types: frozenset[str]) -> str:
    return "|".join(sorted(types))

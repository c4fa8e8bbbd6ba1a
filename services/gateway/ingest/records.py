"""JSON uploads: simple card lists, GitHub issues and Trello boards, mapped by their keys.

- An array of cards, or ``{"cards": [...]}``: a card is an object whose keys name its fields
  as CSV columns do (see :mod:`fields`), or a plain string (its body).
- GitHub issues as the REST API returns them (an array of objects with ``number``, ``title``,
  ``body``, ``labels``, ``state``, ``milestone``): the milestone is the heading path, a
  priority label the author's priority, pull requests (``pull_request`` present) skipped;
  closed issues are kept (their state in the card's metadata).
- A Trello board export (``{"cards": [...], "lists": [...], "checklists": [...]}``): the
  card's list is its heading path, its checklist items its acceptance criteria, archived
  (``closed``) cards skipped.

An array whose objects hold none of the accepted keys is ``input_invalid`` naming the keys it
has; invalid JSON names its line and column.
"""

from __future__ import annotations

import json
from typing import Any

from services.gateway.ingest.fields import NAMES, REQUIRED, Field, accepted_names, locate
from services.gateway.ingest.model import CardDraft, UploadError, UploadLimits
from services.gateway.ingest.record_card import Record, record_draft
from services.gateway.inputs import unstorable

_SHOWN_KEYS = 30


def read_json(text: str, *, file_name: str | None, limits: UploadLimits) -> list[CardDraft]:
    """Every card of a JSON file's text, in order (positions 0: the caller numbers them)."""
    if not text.strip():
        return []
    document = _parse(text)
    if isinstance(document, dict) and _is_trello(document):
        records = _trello_records(document)
    else:
        items, prefix = _items(document)
        records = _item_records(items, prefix)
    drafts = (
        record_draft(record, file_name=file_name, max_chars=limits.max_card_chars)
        for record in records
    )
    return [draft for draft in drafts if draft is not None]


def _parse(text: str) -> Any:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise UploadError(
            "input_invalid",
            f"The file is not valid JSON: {error.msg} at line {error.lineno}, "
            f"column {error.colno}.",
            line=error.lineno,
            column=error.colno,
        ) from None
    except (ValueError, RecursionError) as error:
        raise UploadError("input_invalid", f"The JSON cannot be read: {error}.") from None
    reason = _unstorable_text(document)
    if reason is not None:
        raise UploadError("input_invalid", f"A string of the JSON {reason}.")
    return document


def _unstorable_text(document: Any) -> str | None:
    """Why a string (key or value) of the parsed document cannot be stored, or None: an
    escape can make what UTF-8 and the databases refuse (``\\ud800``, ``\\u0000``)."""
    pending = [document]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            reason = unstorable(value)
            if reason is not None:
                return reason
        elif isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return None


def _items(document: Any) -> tuple[list[Any], str]:
    if isinstance(document, dict) and "cards" in document:
        items, prefix = document["cards"], "cards"
    else:
        items, prefix = document, ""
    if not isinstance(items, list):
        raise UploadError(
            "input_invalid",
            'Expected a JSON array of cards or an object {"cards": [...]}; '
            f"got {_json_kind(items)}.",
        )
    return items, prefix


# --- simple cards and GitHub issues ---------------------------------------------------------


def _is_github_issue(item: dict[str, Any]) -> bool:
    return "number" in item and "title" in item and ("state" in item or "html_url" in item)


def _item_records(items: list[Any], prefix: str) -> list[Record]:
    records: list[Record] = []
    unmapped: set[str] = set()
    mapped_any = False
    for index, item in enumerate(items):
        where = f"item {prefix}[{index}]"
        if isinstance(item, str):
            records.append(Record(title="", description=item, where=where))
            mapped_any = True
            continue
        if not isinstance(item, dict):
            raise UploadError(
                "input_invalid",
                f"JSON {where} is {_json_kind(item)}; a card is an object with a title "
                "and a body, or a string.",
            )
        if _is_github_issue(item):
            mapped_any = True
            if "pull_request" not in item:
                records.append(_github_record(item, where))
            continue
        record = _generic_record(item, where)
        if record is None:
            unmapped.update(str(key) for key in item)
        else:
            mapped_any = True
            records.append(record)
    if unmapped and not mapped_any:
        raise _unmapped(sorted(unmapped))
    return records


def _generic_record(item: dict[str, Any], where: str) -> Record | None:
    """The record of an object whose keys name its fields; None when none is a title or
    body key."""
    keys = [str(key) for key in item]
    columns = locate(keys)
    if not any(field in columns for field in REQUIRED):
        return None

    def value(field: Field, role: str, *, strict: bool = False) -> str | None:
        if field not in columns:
            return None
        key = keys[columns[field][0]]
        return _text(item[key], where, key, role, strict=strict)

    labels = _labels(item[keys[columns[Field.LABELS][0]]]) if Field.LABELS in columns else []
    criteria = item[keys[columns[Field.CRITERIA][0]]] if Field.CRITERIA in columns else None
    group = next(
        (
            value(field, "group") or ""
            for field in (Field.PARENT_NAME, Field.EPIC_LINK, Field.GROUP_NAME, Field.PARENT)
            if value(field, "group")
        ),
        "",
    )
    metadata = {
        keys[columns[field][0]]: value(field, field.value) or ""
        for field in (Field.TYPE, Field.STATUS, Field.POINTS)
        if field in columns
    }
    return Record(
        title=value(Field.TITLE, "title", strict=True) or "",
        description=value(Field.BODY, "body", strict=True) or "",
        external_id=value(Field.ID, "external_id", strict=True),
        priority=value(Field.PRIORITY, "priority"),
        record_type=value(Field.TYPE, "type") or "",
        criteria_lines=_criteria_lines(criteria),
        group=group,
        labels=labels,
        metadata=metadata,
        where=where,
    )


def _github_record(item: dict[str, Any], where: str) -> Record:
    labels = _labels(item.get("labels"))
    milestone = item.get("milestone")
    group = _named(milestone, "title")
    number = _text(item.get("number"), where, "number", "number", strict=True)
    return Record(
        title=_text(item.get("title"), where, "title", "title", strict=True) or "",
        description=_text(item.get("body"), where, "body", "body", strict=True) or "",
        external_id=f"#{number}" if number else None,
        labels=labels,
        group=group,
        record_type=_named(item.get("type"), "name"),
        metadata={"State": _named(item.get("state"), "name"), "Labels": ", ".join(labels)},
        where=where,
    )


# --- Trello ---------------------------------------------------------------------------------


def _is_trello(document: dict[str, Any]) -> bool:
    cards = document.get("cards")
    if not isinstance(cards, list):
        return False
    return "lists" in document or any(isinstance(c, dict) and "idList" in c for c in cards)


def _trello_records(board: dict[str, Any]) -> list[Record]:
    lists = {
        str(entry.get("id")): _named(entry, "name")
        for entry in _objects(board.get("lists"))
        if entry.get("id") is not None
    }
    checklist_items: dict[str, list[str]] = {}
    for checklist in _objects(board.get("checklists")):
        card_id = str(checklist.get("idCard", ""))
        names = [_named(item, "name") for item in _objects(checklist.get("checkItems"))]
        checklist_items.setdefault(card_id, []).extend(name for name in names if name)
    records: list[Record] = []
    for index, card in enumerate(board.get("cards") or []):
        where = f"item cards[{index}]"
        if not isinstance(card, dict):
            raise UploadError(
                "input_invalid", f"Trello {where} is {_json_kind(card)}; a card is an object."
            )
        if card.get("closed") is True:
            continue
        card_id = str(card.get("id", ""))
        labels = _labels(card.get("labels"))
        records.append(
            Record(
                title=_text(card.get("name"), where, "name", "title", strict=True) or "",
                description=_text(card.get("desc"), where, "desc", "body", strict=True) or "",
                external_id=card_id or None,
                labels=labels,
                group=lists.get(str(card.get("idList", "")), ""),
                criteria_lines=checklist_items.get(card_id, []),
                metadata={"Labels": ", ".join(labels)},
                where=where,
            )
        )
    return records


# --- values ---------------------------------------------------------------------------------


def _objects(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _named(value: Any, key: str) -> str:
    """A string, or an object's ``key`` member ({"title": "v1.0"}, {"name": "High"})."""
    if isinstance(value, dict):
        value = value.get(key)
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def _labels(value: Any) -> list[str]:
    """Labels as strings, objects with a name, or one comma-separated string."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list):
        return []
    names = [_named(item, "name") for item in value]
    return [name.strip() for name in names if name.strip()]


def _criteria_lines(value: Any) -> list[str]:
    if isinstance(value, str):
        return value.split("\n")
    if isinstance(value, list):
        return [line for item in value for line in _named(item, "name").split("\n")]
    return []


def _text(value: Any, where: str, key: str, role: str, *, strict: bool) -> str | None:
    """A string field; with ``strict``, an array, object or boolean is ``input_invalid``."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if not strict:
        named = _named(value, "name") or _named(value, "title")
        return named or None
    raise UploadError(
        "input_invalid",
        f"JSON {where}: {key!r} is {_json_kind(value)}; the {role} must be a string.",
    )


def _unmapped(keys: list[str]) -> UploadError:
    shown = ", ".join(repr(key) for key in keys[:_SHOWN_KEYS])
    if len(keys) > _SHOWN_KEYS:
        shown += f" and {len(keys) - _SHOWN_KEYS} more"
    return UploadError(
        "input_invalid",
        f"No title or body key in the JSON's objects (keys: {shown}). Name a key one of "
        f"{accepted_names(Field.TITLE)} for titles, or one of {accepted_names(Field.BODY)} "
        "for text; GitHub issues (number, title, body) and Trello boards (cards, lists) are "
        "read as exported.",
        keys=keys,
        accepted={"title": list(NAMES[Field.TITLE]), "body": list(NAMES[Field.BODY])},
    )


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"

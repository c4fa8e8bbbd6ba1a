"""CSV/TSV uploads: a plain title/body sheet or a tracker export (Jira) mapped by its columns.

The first row is the header; the delimiter (``,`` ``;`` tab ``|``, tab first for ``.tsv``) is
the one whose header names the most known columns (see :mod:`fields`). A file with neither a
title nor a body column is ``input_invalid`` naming its columns and the accepted names.

Jira: Epic rows are groups, not cards: the rows that link to one (Epic Link, Parent, Parent
id by key, id or name; or a Parent summary) get its name as their heading path and its
description as context; epics are cards only in a file of nothing but epics. Sub-task rows are kept
as requirements of their parent's card (listed under "Sub-tasks:" in its body), not as cards;
a sub-task whose parent is not in the file is a card under the parent's name.

Broken files are said plainly: an unclosed quote names the line where it opened; a row with
more (non-empty) cells than the header names its row and line.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from services.gateway.ingest.fields import (
    NAMES,
    REQUIRED,
    Field,
    accepted_names,
    locate,
    name_key,
)
from services.gateway.ingest.model import CardDraft, UploadError, UploadLimits
from services.gateway.ingest.normalise import _normalise_newlines, clean_title, shorten
from services.gateway.ingest.quotes import find_quote_problem
from services.gateway.ingest.record_card import Record, record_draft

_DELIMITERS = (",", ";", "\t", "|")
_EPIC_TYPES = frozenset({"epic"})
_SUBTASK_TYPES = frozenset({"subtask", "subtasks", "technicalsubtask"})
_CONTEXT_CHARS = 1000
_SHOWN_COLUMNS = 30
_MAX_COLUMNS = 2000
"""A Jira export of every field has a few hundred columns; far more is not a tracker sheet."""
_METADATA_FIELDS = (Field.TYPE, Field.STATUS, Field.POINTS, Field.NUMERIC_ID)


def read_csv(text: str, *, file_name: str | None, limits: UploadLimits) -> list[CardDraft]:
    """Every card of a CSV/TSV file's text, in order (positions 0: the caller numbers them)."""
    text = _drop_leading_blank_lines(_normalise_newlines(text))
    if not text.strip():
        return []
    tab_first = (file_name or "").lower().endswith(".tsv")
    delimiter = _sniff_delimiter(text, tab_first=tab_first)
    _check_quotes(text, delimiter)
    header, rows = _rows(text, delimiter, limits)
    if len(header) > _MAX_COLUMNS:
        raise UploadError(
            "input_invalid",
            f"The CSV header has {len(header)} columns; at most {_MAX_COLUMNS} are read. "
            "Export fewer fields.",
            limit=_MAX_COLUMNS,
        )
    columns = locate(header)
    if not any(field in columns for field in REQUIRED):
        raise _unmapped(header)
    records = _records([_row(header, columns, row, where) for row, where, _ in rows])
    drafts = (
        record_draft(record, file_name=file_name, max_chars=limits.max_card_chars)
        for record in records
    )
    return [draft for draft in drafts if draft is not None]


# --- reading rows ---------------------------------------------------------------------------


def _drop_leading_blank_lines(text: str) -> str:
    start = 0
    while True:
        end = text.find("\n", start)
        if end < 0 or text[start:end].strip(" \t"):
            return text[start:]
        start = end + 1


def _first_line(text: str) -> str:
    end = text.find("\n")
    return text if end < 0 else text[:end]


def _sniff_delimiter(text: str, *, tab_first: bool) -> str:
    """The delimiter whose split of the header line names the most known columns."""
    order = ("\t", ",", ";", "|") if tab_first else _DELIMITERS
    line = _first_line(text)
    best = (-1, order[0])
    for delimiter in order:
        try:
            names = next(csv.reader([line], delimiter=delimiter), [])
        except csv.Error:
            names = []
        found = len(locate(names[:_MAX_COLUMNS]))
        if found > best[0]:
            best = (found, delimiter)
    return best[1]


def _check_quotes(text: str, delimiter: str) -> None:
    problem = find_quote_problem(text, delimiter)
    if problem is None:
        return
    if problem.closed_at_line is None:
        detail = (
            f"The CSV has a quote opened on line {problem.line} that is never closed, so every "
            "row after it would be read as one cell. Close the quote, or double a quote "
            'that belongs to the text ("").'
        )
    else:
        detail = (
            f"The CSV has a quoted cell opened on line {problem.line} whose closing quote, on "
            f"line {problem.closed_at_line}, is followed by more text: a stray quote has "
            'merged the rows between them. Double a quote that belongs to the text ("").'
        )
    raise UploadError("input_invalid", detail, line=problem.line)


def _rows(
    text: str, delimiter: str, limits: UploadLimits
) -> tuple[list[str], list[tuple[list[str], str, int]]]:
    """The header and every data row with where it is ("row 3 (line 4)") and its line."""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, strict=False)
    rows: list[tuple[list[str], str, int]] = []
    header: list[str] | None = None
    row_number = 0
    line = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            if "field larger than field limit" in str(error):
                # The csv module's own cap (131072 characters), far above a card's limit.
                raise UploadError(
                    "card_too_long",
                    f"CSV row {row_number + 1} (line {line}) has a cell longer than "
                    f"{csv.field_size_limit()} characters; the limit is "
                    f"{limits.max_card_chars} per card. Split it.",
                    limit=limits.max_card_chars,
                ) from None
            raise UploadError(
                "input_invalid", f"CSV row {row_number + 1} (line {line}) cannot be read: {error}."
            ) from None
        row_number += 1
        row_line, line = line, reader.line_num + 1
        where = f"row {row_number} (line {row_line})"
        if header is None:
            header = row
            continue
        if len(row) > len(header) and any(cell.strip() for cell in row[len(header) :]):
            raise UploadError(
                "input_invalid",
                f"CSV {where} has {len(row)} cells but the header has {len(header)} columns; "
                "quote the cells that hold the delimiter "
                f"({_delimiter_name(delimiter)}), or add the missing column names.",
                row=row_number,
                line=row_line,
            )
        rows.append((row, where, row_line))
    return header or [], rows


def _delimiter_name(delimiter: str) -> str:
    return {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe"}[delimiter]


def _unmapped(header: list[str]) -> UploadError:
    names = [name.strip() for name in header]
    shown = ", ".join(repr(name) for name in names[:_SHOWN_COLUMNS]) or "(none)"
    if len(names) > _SHOWN_COLUMNS:
        shown += f" and {len(names) - _SHOWN_COLUMNS} more"
    return UploadError(
        "input_invalid",
        f"No title or body column in the CSV header (columns: {shown}). Name a column one of "
        f"{accepted_names(Field.TITLE)} for titles, or one of {accepted_names(Field.BODY)} "
        "for text (case and punctuation do not matter).",
        columns=names,
        accepted={"title": list(NAMES[Field.TITLE]), "body": list(NAMES[Field.BODY])},
    )


# --- rows into records ----------------------------------------------------------------------


@dataclass(slots=True)
class _Row:
    """A record and how its row links to others (Jira's epic and parent columns)."""

    record: Record
    numeric_id: str = ""
    epic_name: str = ""
    epic_link: str = ""
    parent: str = ""
    parent_name: str = ""
    group_name: str = ""

    @property
    def type_key(self) -> str:
        return name_key(self.record.record_type)

    def names(self) -> list[str]:
        """What other rows may call it by: its key, its numeric id, its names."""
        names = [self.record.external_id or "", self.numeric_id, self.epic_name]
        names.append(self.record.title)
        return [name.strip().lower() for name in names if name and name.strip()]


def _row(header: list[str], columns: dict[Field, list[int]], row: list[str], where: str) -> _Row:
    def cells(field: Field) -> list[str]:
        return [row[i].strip() for i in columns.get(field, []) if i < len(row) and row[i].strip()]

    def cell(field: Field) -> str:
        found = cells(field)
        return found[0] if found else ""

    labels = [
        part.strip()
        for value in cells(Field.LABELS)
        for part in value.replace(";", ",").split(",")
        if part.strip()
    ]
    metadata = {
        header[columns[field][0]].strip(): cell(field)
        for field in _METADATA_FIELDS
        if field in columns
    }
    if labels:
        metadata["Labels"] = ", ".join(labels)
    criteria = cell(Field.CRITERIA)
    record = Record(
        title=cell(Field.TITLE),
        description=cell(Field.BODY),
        external_id=cell(Field.ID) or None,
        priority=cell(Field.PRIORITY) or None,
        record_type=cell(Field.TYPE),
        criteria_lines=criteria.split("\n") if criteria else [],
        labels=labels,
        metadata=metadata,
        where=where,
    )
    return _Row(
        record,
        numeric_id=cell(Field.NUMERIC_ID),
        epic_name=cell(Field.EPIC_NAME),
        epic_link=cell(Field.EPIC_LINK),
        parent=cell(Field.PARENT),
        parent_name=cell(Field.PARENT_NAME),
        group_name=cell(Field.GROUP_NAME),
    )


def _records(rows: list[_Row]) -> list[Record]:
    """The records that become cards, in file order, with their groups and sub-records."""
    epics: dict[str, _Row] = {}
    by_key: dict[str, _Row] = {}
    for row in rows:
        for key in row.names():
            if row.type_key in _EPIC_TYPES:
                epics.setdefault(key, row)
            elif row.type_key not in _SUBTASK_TYPES:
                by_key.setdefault(key, row)
    cards: list[Record] = []
    for row in rows:
        if row.type_key in _EPIC_TYPES:
            continue
        references = [row.epic_link, row.parent]
        if row.type_key in _SUBTASK_TYPES:
            parent = next((by_key[r.lower()] for r in references if r.lower() in by_key), None)
            if parent is not None:
                parent.record.children.append(row.record)
                continue
        epic = next((epics[r.lower()] for r in references if r and r.lower() in epics), None)
        if epic is not None:
            row.record.group = epic.epic_name or epic.record.title
            row.record.context = shorten(clean_title(epic.record.description), _CONTEXT_CHARS)
        else:
            row.record.group = row.parent_name or row.epic_link or row.group_name or row.parent
        cards.append(row.record)
    if cards:
        return cards
    # A file of epics only: the epics are its backlog (each its own heading path).
    epic_records = [row.record for row in rows if row.type_key in _EPIC_TYPES]
    for record in epic_records:
        record.group = record.title
    return epic_records

"""Tables of requirements and glossary tables: which column holds the author's id, the text,
the criteria and the priority (by header, else ids in the first column), and each row as a
requirement; a glossary's rows as terms. Cells are read from bounded strings."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from contracts.backlog import AcceptanceCriterion
from contracts.documents import StatedRequirement, StatementForm, Term
from services.gateway.ingest.blocks import Block, Row
from services.gateway.ingest.inline import strip_inline
from services.gateway.ingest.readings import PLAIN_MAX_CHARS
from services.gateway.ingest.spans import span
from services.gateway.ingest.statements.author_ids import is_author_id
from services.gateway.ingest.statements.stated_requirement import statement

_ID_HEADERS = frozenset(("id", "#", "ref", "key", "req", "req id", "requirement id", "no", "nr"))
_TEXT_HEADERS = (
    "description",
    "requirement",
    "statement",
    "feature",
    "capability",
    "criterion",
    "criteria",
    "story",
    "user story",
    "name",
    "title",
    "summary",
    "metric",
    "goal",
)
_CRITERIA_HEADERS = ("acceptance criteria", "acceptance", "criteria", "success criteria")
_PRIORITY_HEADERS = ("priority", "moscow", "prio")


@dataclass(frozen=True, slots=True)
class TableColumns:
    id: int | None
    text: int | None
    criteria: int | None
    priority: int | None


def _cells(row: Row) -> list[str]:
    return [strip_inline(c.text[:PLAIN_MAX_CHARS]) for c in row.cells]


def glossary_terms(block: Block) -> Iterator[Term]:
    """A glossary table's rows as terms: the first cell the term, the others its definition."""
    for row in block.rows:
        cells = _cells(row)
        if len(cells) >= 2 and cells[0]:
            yield Term(term=cells[0], definition=" ".join(cells[1:]))


def table_columns(block: Block) -> TableColumns:
    """The table's columns by their headers; ids in the first column of most rows make it the
    id column when no header names one."""
    header = [strip_inline(h[:200]).lower().strip(" :") for h in block.header]
    id_column = _column(header, _ID_HEADERS, exact=True)
    if id_column is None and block.rows:
        first = [row.cells[0].text if row.cells else "" for row in block.rows]
        if sum(is_author_id(value) for value in first) * 2 > len(first):
            id_column = 0
    # "| Requirement | Description |" with ids in the first column: the text is the
    # description, never the id column again.
    others = [h if i != id_column else "" for i, h in enumerate(header)]
    return TableColumns(
        id=id_column,
        text=_column(others, _TEXT_HEADERS),
        criteria=_column(others, _CRITERIA_HEADERS, exact=True),
        priority=_column(others, _PRIORITY_HEADERS),
    )


def row_requirement(
    row: Row, columns: TableColumns, *, section: str, section_priority: str | None
) -> StatedRequirement | None:
    """The row as a requirement spanning the whole row (its kind as :func:`statement` reads
    it), or None when it states none."""
    id_column, text_column = columns.id, columns.text
    criteria_column, priority_column = columns.criteria, columns.priority
    cells = _cells(row)
    if not any(cells):
        return None
    author_id = cells[id_column] if id_column is not None and id_column < len(cells) else None
    if author_id is not None and not is_author_id(author_id):
        author_id = None
    if author_id is not None and text_column is not None and text_column < len(cells):
        text = cells[text_column]
    else:
        skip = {c for c in (criteria_column, priority_column) if c is not None}
        if author_id is not None and id_column is not None:
            skip.add(id_column)
        text = " ".join(c for i, c in enumerate(cells) if c and i not in skip)
    criteria = []
    if criteria_column is not None and criteria_column < len(cells) and cells[criteria_column]:
        value = cells[criteria_column]
        criteria = [AcceptanceCriterion(given="", when="", then=value, text=value)]
    priority = (
        cells[priority_column]
        if priority_column is not None and priority_column < len(cells)
        else None
    ) or section_priority
    found = statement(
        text,
        row.start,
        form=StatementForm.TABLE_ROW,
        section=section,
        author_id=author_id,
        author_priority=priority or None,
        criteria=criteria,
    )
    if found is None:
        return None
    return found.model_copy(update={"source_span": span(row.start, row.end)})


def _column(
    header: list[str], names: tuple[str, ...] | frozenset[str], *, exact: bool = False
) -> int | None:
    for index, cell in enumerate(header):
        if cell in names:
            return index
    if exact:
        return None
    for name in names:
        for index, cell in enumerate(header):
            if name in cell:
                return index
    return None

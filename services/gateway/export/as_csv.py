"""The backlog as CSV (RFC 4180, CRLF rows): one row per item, parents before children,
columns :data:`CSV_COLUMNS`, lists joined with ``;``; the quality report's rows after the
items. A cell starting with ``= + - @`` or a tab gets a leading ``'`` so a spreadsheet shows
it instead of running it as a formula (the text is generated from untrusted cards);
``neutralize_formulas=False`` turns it off."""

from __future__ import annotations

import csv
import io

from contracts.backlog import Story
from services.gateway.export.backlog import Backlog
from services.gateway.export.figures import figure, percent
from services.gateway.quality import QualityReport

CSV_COLUMNS = (
    "type",
    "id",
    "parent_id",
    "title",
    "priority",
    "estimate",
    "estimate_unit",
    "kind",
    "details",
    "requirement_ids",
    "depends_on",
)
LIST_SEPARATOR = ";"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def user_story_sentence(story: Story) -> str:
    return f"As a {story.as_a}, I want {story.i_want}, so that {story.so_that}."


def criterion_sentence(given: str, when: str, then: str) -> str:
    return f"Given {given}, when {when}, then {then}"


def _story_details(story: Story) -> str:
    lines = [user_story_sentence(story)]
    if story.acceptance_criteria:
        lines.append("Acceptance criteria:")
        lines.extend(
            "- " + criterion_sentence(c.given, c.when, c.then) for c in story.acceptance_criteria
        )
    return "\n".join(lines)


def csv_rows(backlog: Backlog) -> list[dict[str, str]]:
    """The CSV's rows as dicts keyed by :data:`CSV_COLUMNS`, before formula neutralising."""
    rows: list[dict[str, str]] = []
    for node in backlog.ordered().epics:
        epic = node.epic
        rows.append(
            {
                "type": "epic",
                "id": epic.epic_id,
                "parent_id": "",
                "title": epic.title,
                "priority": epic.priority.value,
                "estimate": "",
                "estimate_unit": "",
                "kind": "",
                "details": epic.goal,
                "requirement_ids": LIST_SEPARATOR.join(epic.requirement_ids),
                "depends_on": "",
            }
        )
        for child in node.stories:
            story = child.story
            rows.append(
                {
                    "type": "story",
                    "id": story.story_id,
                    "parent_id": epic.epic_id,
                    "title": story.title,
                    "priority": story.priority.value,
                    "estimate": str(story.estimate_points),
                    "estimate_unit": "points",
                    "kind": "",
                    "details": _story_details(story),
                    "requirement_ids": LIST_SEPARATOR.join(story.requirement_ids),
                    "depends_on": "",
                }
            )
            for subtask in child.subtasks:
                rows.append(
                    {
                        "type": "subtask",
                        "id": subtask.subtask_id,
                        "parent_id": story.story_id,
                        "title": subtask.title,
                        "priority": "",
                        "estimate": figure(subtask.estimate_hours),
                        "estimate_unit": "hours",
                        "kind": subtask.kind.value,
                        "details": subtask.description,
                        "requirement_ids": "",
                        "depends_on": LIST_SEPARATOR.join(subtask.depends_on),
                    }
                )
    if backlog.quality is not None:
        rows += quality_csv_rows(backlog.quality)
    return rows


def _row(type_: str, **cells: str) -> dict[str, str]:
    return {column: "" for column in CSV_COLUMNS} | {"type": type_} | cells


def quality_csv_rows(report: QualityReport) -> list[dict[str, str]]:
    """The quality report after the items, in the same columns: a ``quality`` row with the
    coverage, a ``finding`` row per finding (``kind`` says which) and a ``question`` row per
    open question (``parent_id`` its card, ``details`` its span). A tracker import that takes
    only epics, stories and subtasks filters on ``type``."""
    coverage = report.coverage
    rows = [
        _row(
            "quality",
            id=report.project_id,
            title="Coverage of the author's requirements",
            kind="coverage",
            estimate=figure(round(100 * coverage.share, 1)) if coverage.share is not None else "",
            estimate_unit="percent",
            details=f"{coverage.covered} of {coverage.total} requirements cited by a story "
            f"that is not junk ({percent(coverage.share)})",
        )
    ]
    rows += [
        _row(
            "finding",
            id=r.requirement_id,
            parent_id=r.card_id,
            title=r.text,
            kind="uncovered_requirement",
            details=f"No story cites it{'; author id ' + r.author_id if r.author_id else ''}",
            requirement_ids=r.requirement_id,
        )
        for r in report.uncovered
    ]
    rows += [
        _row("finding", id=u.story_id, title=u.title, kind="untestable", details=u.reason)
        for u in report.untestable
    ]
    rows += [
        _row(
            "finding",
            id=s.story_id,
            title=s.title,
            kind="no_requirement",
            details="Cites none of the author's requirements",
        )
        for s in report.stories_without_requirement
    ]
    for group in report.duplicates:
        first, *others = group.items
        rows += [
            _row(
                "finding",
                id=item.id,
                parent_id=group.story_id or "",
                title=item.title,
                kind="duplicate",
                details=f"{group.reason.replace('_', ' ')} as {first.id} "
                f"(similarity {group.similarity:g})",
            )
            for item in others
        ]
    rows += [
        _row("finding", id=j.id, title=j.title, kind="junk", details=f"{j.kind}: {j.reason}")
        for j in report.junk
    ]
    rows += [
        _row(
            "finding",
            id=o.id,
            title=o.title,
            kind="oversized",
            estimate=figure(o.size),
            estimate_unit=o.unit,
            details=f"{o.kind} over {figure(o.limit)} {o.unit}",
        )
        for o in report.oversized
    ]
    rows += [
        _row(
            "question",
            parent_id=q.card_id,
            title=q.text,
            kind="open_question",
            details=f"card {q.card_title}"
            + (f", characters {q.source_span.start}-{q.source_span.end}" if q.source_span else ""),
        )
        for q in report.open_questions
    ]
    return rows


def _safe_cell(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def render_csv(backlog: Backlog, *, neutralize_formulas: bool = True) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for row in csv_rows(backlog):
        if neutralize_formulas:
            row = {key: _safe_cell(value) for key, value in row.items()}
        writer.writerow(row)
    return out.getvalue()

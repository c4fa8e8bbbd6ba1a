"""The whole backlog as JSON, CSV or Markdown (``GET /v1/projects/{id}/export?format=``).

Pure: a :class:`Backlog` in, text out. Items are always rendered in the same order (epics,
stories and subtasks by their ``order``, then id), so two exports of the same backlog are
byte-identical and the three formats list the same items.

- JSON: ``{project: {id, name}, epics: [{epic, stories: [{story, subtasks: [...]}]}]}``, the
  shape of ``GET /v1/projects/{id}/subtasks`` plus the project; :meth:`Backlog.from_dict`
  reads it back.
- CSV (RFC 4180, CRLF rows): one row per item, parents before children, columns
  :data:`CSV_COLUMNS`. Lists are joined with ``;``. A cell starting with ``= + - @`` or a
  tab gets a leading ``'`` so a spreadsheet shows it instead of running it as a formula
  (the text is generated from untrusted cards); ``neutralize_formulas=False`` turns it off.
- Markdown: a heading per epic and story, the user story sentence, Given/When/Then criteria
  as bullets, subtasks as a checklist with kind and hours.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from contracts.api import ExportFormat
from contracts.backlog import Epic, Story, Subtask
from services.gateway.quality import QualityReport

MEDIA_TYPES: Mapping[ExportFormat, str] = {
    ExportFormat.JSON: "application/json",
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.MARKDOWN: "text/markdown; charset=utf-8",
}
FILE_EXTENSIONS: Mapping[ExportFormat, str] = {
    ExportFormat.JSON: "json",
    ExportFormat.CSV: "csv",
    ExportFormat.MARKDOWN: "md",
}
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


@dataclass(frozen=True, slots=True)
class ProjectRef:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class StoryNode:
    story: Story
    subtasks: tuple[Subtask, ...] = ()


@dataclass(frozen=True, slots=True)
class EpicNode:
    epic: Epic
    stories: tuple[StoryNode, ...] = ()


@dataclass(frozen=True, slots=True)
class BacklogCounts:
    epics: int
    stories: int
    subtasks: int


@dataclass(frozen=True, slots=True)
class Backlog:
    project: ProjectRef
    epics: tuple[EpicNode, ...] = ()
    # The project's quality report with whole lists (open questions included); each format
    # renders it after the items when it is given.
    quality: QualityReport | None = None

    @property
    def counts(self) -> BacklogCounts:
        stories = [node for epic in self.epics for node in epic.stories]
        return BacklogCounts(
            epics=len(self.epics),
            stories=len(stories),
            subtasks=sum(len(node.subtasks) for node in stories),
        )

    def ordered(self) -> Backlog:
        """The same backlog, every level sorted by ``order`` then id."""
        return Backlog(
            self.project,
            tuple(
                EpicNode(
                    node.epic,
                    tuple(
                        StoryNode(
                            child.story,
                            tuple(sorted(child.subtasks, key=lambda s: (s.order, s.subtask_id))),
                        )
                        for child in sorted(
                            node.stories, key=lambda c: (c.story.order, c.story.story_id)
                        )
                    ),
                )
                for node in sorted(self.epics, key=lambda n: (n.epic.order, n.epic.epic_id))
            ),
            self.quality,
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], project: ProjectRef | None = None) -> Backlog:
        """Read the JSON export (or ``GET .../subtasks`` with ``project`` given) back."""
        if project is None:
            raw = data["project"]
            project = ProjectRef(id=str(raw["id"]), name=str(raw["name"]))
        epics = tuple(
            EpicNode(
                Epic.model_validate(entry["epic"]),
                tuple(
                    StoryNode(
                        Story.model_validate(child["story"]),
                        tuple(Subtask.model_validate(s) for s in child.get("subtasks", ())),
                    )
                    for child in entry.get("stories", ())
                ),
            )
            for entry in data.get("epics", ())
        )
        return cls(project, epics)


def build_backlog(
    project: ProjectRef,
    epics: Iterable[Epic],
    stories: Iterable[Story],
    subtasks: Iterable[Subtask],
    quality: QualityReport | None = None,
) -> Backlog:
    """A backlog from flat rows, ordered. A story whose epic or a subtask whose story is not
    in the input (a projection still catching up) is left out, never shown at the top."""
    by_story: dict[str, list[Subtask]] = {}
    for subtask in subtasks:
        by_story.setdefault(subtask.story_id, []).append(subtask)
    by_epic: dict[str, list[StoryNode]] = {}
    for story in stories:
        node = StoryNode(story, tuple(by_story.get(story.story_id, ())))
        by_epic.setdefault(story.epic_id, []).append(node)
    nodes = tuple(EpicNode(epic, tuple(by_epic.get(epic.epic_id, ()))) for epic in epics)
    return Backlog(project, nodes, quality).ordered()


# --- JSON -----------------------------------------------------------------------------------


def backlog_to_dict(backlog: Backlog) -> dict[str, Any]:
    backlog = backlog.ordered()
    body = {
        "project": {"id": backlog.project.id, "name": backlog.project.name},
        "epics": [
            {
                "epic": node.epic.model_dump(mode="json"),
                "stories": [
                    {
                        "story": child.story.model_dump(mode="json"),
                        "subtasks": [s.model_dump(mode="json") for s in child.subtasks],
                    }
                    for child in node.stories
                ],
            }
            for node in backlog.epics
        ],
    }
    if backlog.quality is not None:
        report = backlog.quality.model_dump(mode="json")
        body["open_questions"] = report.pop("open_questions")
        body["quality"] = report
    return body


def render_json(backlog: Backlog) -> str:
    return json.dumps(backlog_to_dict(backlog), indent=2, ensure_ascii=False) + "\n"


# --- CSV ------------------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _number(value: float) -> str:
    return f"{value:g}"


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
                        "estimate": _number(subtask.estimate_hours),
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


def _percent(share: float | None) -> str:
    return "unknown" if share is None else f"{100 * share:.1f} %"


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
            estimate=_number(round(100 * coverage.share, 1)) if coverage.share is not None else "",
            estimate_unit="percent",
            details=f"{coverage.covered} of {coverage.total} requirements cited by a story "
            f"that is not junk ({_percent(coverage.share)})",
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
            estimate=_number(o.size),
            estimate_unit=o.unit,
            details=f"{o.kind} over {_number(o.limit)} {o.unit}",
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


# --- Markdown -------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>])")
_WHITESPACE = re.compile(r"\s+")


def _inline(text: str) -> str:
    """One line of literal text: whitespace collapsed, Markdown marks escaped."""
    return _MD_SPECIAL.sub(r"\\\1", _WHITESPACE.sub(" ", text).strip())


def _block(text: str, indent: str = "") -> list[str]:
    """Paragraphs of literal text: each line escaped (a leading ``#`` too, so it cannot open
    a heading) and indented; blank lines kept between paragraphs only."""
    out: list[str] = []
    blank = False
    for raw in text.strip().splitlines():
        line = raw.strip()
        if not line:
            blank = bool(out)
            continue
        if blank:
            out.append("")
            blank = False
        escaped = _MD_SPECIAL.sub(r"\\\1", line)
        if escaped.startswith("#"):
            escaped = "\\" + escaped
        out.append(indent + escaped)
    return out


def _facts(*parts: str) -> str:
    return ", ".join(part for part in parts if part)


def _requirements(ids: Sequence[str]) -> str:
    return "requirements " + ", ".join(f"`{i}`" for i in ids) if ids else ""


def render_markdown(backlog: Backlog) -> str:
    backlog = backlog.ordered()
    counts = backlog.counts
    points = sum(c.story.estimate_points for n in backlog.epics for c in n.stories)
    hours = sum(s.estimate_hours for n in backlog.epics for c in n.stories for s in c.subtasks)
    lines = [
        f"# {_inline(backlog.project.name)}",
        "",
        f"Project `{backlog.project.id}`: {counts.epics} epics, {counts.stories} stories "
        f"({points} points), {counts.subtasks} subtasks ({_number(hours)} hours).",
    ]
    for e_index, node in enumerate(backlog.epics, start=1):
        epic = node.epic
        lines += [
            "",
            f"## {e_index}. {_inline(epic.title)}",
            "",
            _facts(
                f"Epic `{epic.epic_id}`", epic.priority.value, _requirements(epic.requirement_ids)
            )
            + ".",
        ]
        if epic.goal.strip():
            lines += ["", *_block(epic.goal)]
        for s_index, child in enumerate(node.stories, start=1):
            lines += _story_markdown(f"{e_index}.{s_index}", child)
    if backlog.quality is not None:
        lines += quality_markdown(backlog.quality)
    return "\n".join(lines) + "\n"


def _titled(ident: str, title: str) -> str:
    return f"{_inline(title)} `{ident}`"


def _section(title: str, entries: list[str]) -> list[str]:
    return ["", f"### {title} ({len(entries)})", "", *entries] if entries else []


def quality_markdown(report: QualityReport) -> list[str]:
    """The quality report and the open questions as sections after the backlog."""
    c, coverage = report.counts, report.coverage
    lines = [
        "",
        "## Quality",
        "",
        f"Coverage: {coverage.covered} of {coverage.total} of the author's requirements are "
        f"cited by a story that is not junk ({_percent(coverage.share)}).",
        "",
        "| measure | count |",
        "| --- | --- |",
        f"| uncovered requirements | {c.requirements_uncovered} |",
        f"| stories without a testable criterion | {c.stories_untestable} |",
        f"| stories citing no requirement | {c.stories_without_requirement} |",
        f"| duplicates (in {c.duplicate_groups} groups) | {c.duplicates} |",
        f"| junk items | {c.junk} |",
        f"| stories over {report.thresholds.max_story_points} points | {c.oversized_stories} |",
        f"| subtasks over {_number(report.thresholds.max_subtask_hours)} hours "
        f"| {c.oversized_subtasks} |",
        f"| open questions | {c.open_questions} |",
    ]
    lines += _section(
        "Uncovered requirements",
        [
            f"- {_inline(r.author_id) + ': ' if r.author_id else ''}{_inline(r.text)} "
            f"`{r.requirement_id}` (card {_inline(r.card_title)})"
            for r in report.uncovered
        ],
    )
    lines += _section(
        "Stories without a testable criterion",
        [f"- {_titled(u.story_id, u.title)}: {_inline(u.reason)}" for u in report.untestable],
    )
    lines += _section(
        "Stories citing no requirement",
        [f"- {_titled(s.story_id, s.title)}" for s in report.stories_without_requirement],
    )
    lines += _section(
        "Duplicates",
        [
            f"- {d.kind}s, {d.reason.replace('_', ' ')} ({d.similarity:g}): "
            + "; ".join(_titled(i.id, i.title) for i in d.items)
            for d in report.duplicates
        ],
    )
    lines += _section(
        "Junk",
        [f"- {j.kind} {_titled(j.id, j.title)}: {_inline(j.reason)}" for j in report.junk],
    )
    lines += _section(
        "Oversized",
        [
            f"- {o.kind} {_titled(o.id, o.title)}: {_number(o.size)} {o.unit} "
            f"(over {_number(o.limit)})"
            for o in report.oversized
        ],
    )
    lines += ["", "## Open questions", ""]
    lines += [
        f"- {_inline(q.text)} (card {_inline(q.card_title)} `{q.card_id}`"
        + (f", characters {q.source_span.start}-{q.source_span.end}" if q.source_span else "")
        + ")"
        for q in report.open_questions
    ] or ["None."]
    return lines


def _story_markdown(number: str, child: StoryNode) -> list[str]:
    story = child.story
    lines = [
        "",
        f"### {number} {_inline(story.title)}",
        "",
        _facts(
            f"Story `{story.story_id}`",
            story.priority.value,
            f"{story.estimate_points} points",
            _requirements(story.requirement_ids),
        )
        + ".",
        "",
        f"**As a** {_inline(story.as_a)}, **I want** {_inline(story.i_want)}, "
        f"**so that** {_inline(story.so_that)}.",
    ]
    if story.acceptance_criteria:
        lines += ["", "**Acceptance criteria**", ""]
        lines += [
            f"- **Given** {_inline(c.given)}, **when** {_inline(c.when)}, "
            f"**then** {_inline(c.then)}"
            for c in story.acceptance_criteria
        ]
    if child.subtasks:
        titles = {s.subtask_id: s.title for s in child.subtasks}
        lines += ["", "**Subtasks**", ""]
        for subtask in child.subtasks:
            lines.append(
                f"- [ ] {_inline(subtask.title)} ({subtask.kind.value}, "
                f"{_number(subtask.estimate_hours)} h) `{subtask.subtask_id}`"
            )
            lines += _block(subtask.description, indent="  ")
            if subtask.depends_on:
                after = ", ".join(_inline(titles.get(i, i)) for i in subtask.depends_on)
                lines.append(f"  After: {after}.")
    return lines


# --- all formats ----------------------------------------------------------------------------


def render(backlog: Backlog, fmt: ExportFormat) -> str:
    if fmt is ExportFormat.JSON:
        return render_json(backlog)
    if fmt is ExportFormat.CSV:
        return render_csv(backlog)
    return render_markdown(backlog)


_SLUG = re.compile(r"[^a-z0-9]+")


def export_filename(project: ProjectRef, fmt: ExportFormat) -> str:
    """A file name for ``Content-Disposition``: ``<project-slug>-backlog.<ext>``."""
    ascii_name = unicodedata.normalize("NFKD", project.name).encode("ascii", "ignore").decode()
    slug = _SLUG.sub("-", ascii_name.lower()).strip("-")[:60].strip("-") or project.id
    return f"{slug}-backlog.{FILE_EXTENSIONS[fmt]}"

"""The backlog as Markdown: a heading per epic and story, the user story sentence,
Given/When/Then criteria as bullets, subtasks as a checklist with kind and hours; the quality
report and the open questions as sections after it. The author's text is escaped, so it
cannot open a heading or markup of its own."""

from __future__ import annotations

import re
from collections.abc import Sequence

from services.gateway.export.backlog import Backlog, StoryNode
from services.gateway.export.figures import figure, percent
from services.gateway.quality import QualityReport

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
        f"({points} points), {counts.subtasks} subtasks ({figure(hours)} hours).",
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
        f"cited by a story that is not junk ({percent(coverage.share)}).",
        "",
        "| measure | count |",
        "| --- | --- |",
        f"| uncovered requirements | {c.requirements_uncovered} |",
        f"| stories without a testable criterion | {c.stories_untestable} |",
        f"| stories citing no requirement | {c.stories_without_requirement} |",
        f"| duplicates (in {c.duplicate_groups} groups) | {c.duplicates} |",
        f"| junk items | {c.junk} |",
        f"| stories over {report.thresholds.max_story_points} points | {c.oversized_stories} |",
        f"| subtasks over {figure(report.thresholds.max_subtask_hours)} hours "
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
            f"- {o.kind} {_titled(o.id, o.title)}: {figure(o.size)} {o.unit} "
            f"(over {figure(o.limit)})"
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
                f"{figure(subtask.estimate_hours)} h) `{subtask.subtask_id}`"
            )
            lines += _block(subtask.description, indent="  ")
            if subtask.depends_on:
                after = ", ".join(_inline(titles.get(i, i)) for i in subtask.depends_on)
                lines.append(f"  After: {after}.")
    return lines

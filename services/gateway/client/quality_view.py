"""What ``cardflow quality`` and ``cardflow questions`` print: pure, the API's JSON in, lines
out (the CLI is a client of the public API only, so this reads the report as JSON)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from services.gateway.client.progress_view import one_line

SHOWN_PER_LIST = 10
TITLE_WIDTH = 70


def _short(text: Any, width: int = TITLE_WIDTH) -> str:
    line = one_line(str(text or ""))
    return line if len(line) <= width else line[: width - 3] + "..."


def _percent(share: float | None) -> str:
    return "unknown" if share is None else f"{100 * share:.1f} %"


def _span(span: Mapping[str, Any] | None) -> str:
    return f"characters {span['start']}-{span['end']}" if span else "no span"


def _listed(entries: Sequence[str], total: int, more_hint: str) -> list[str]:
    lines = [f"  {entry}" for entry in entries[:SHOWN_PER_LIST]]
    if total > min(len(entries), SHOWN_PER_LIST):
        lines.append(f"  ... {total - min(len(entries), SHOWN_PER_LIST)} more ({more_hint})")
    return lines


def quality_lines(report: Mapping[str, Any], project_name: str = "") -> list[str]:
    """``cardflow quality``: the counts, then the first entries of each finding."""
    counts = report.get("counts") or {}
    coverage = report.get("coverage") or {}
    limits = report.get("thresholds") or {}
    hint = "--json for the lists"
    title = (
        f"Quality of {project_name} ({report.get('project_id')})"
        if project_name
        else (f"Quality of project {report.get('project_id')}")
    )
    lines = [
        title,
        f"coverage: {_percent(coverage.get('share'))}, {coverage.get('covered', 0)} of "
        f"{coverage.get('total', 0)} of the author's requirements cited by a story that is "
        "not junk",
    ]

    def section(label: str, total: int, entries: Iterable[str]) -> None:
        lines.append(f"{label}: {total}")
        lines.extend(_listed(list(entries), total, hint))

    section(
        "uncovered requirements",
        int(counts.get("requirements_uncovered", 0)),
        (
            f"{r.get('author_id') or r['requirement_id']}  {_short(r['text'])}  "
            f"(card {_short(r['card_title'], 40)})"
            for r in report.get("uncovered") or ()
        ),
    )
    section(
        "stories without a testable criterion",
        int(counts.get("stories_untestable", 0)),
        (
            f"{u['story_id']}  {_short(u['title'])}: {u['reason']}"
            for u in report.get("untestable") or ()
        ),
    )
    section(
        "stories citing no requirement",
        int(counts.get("stories_without_requirement", 0)),
        (
            f"{s['story_id']}  {_short(s['title'])}"
            for s in report.get("stories_without_requirement") or ()
        ),
    )
    section(
        f"duplicates (in {counts.get('duplicate_groups', 0)} groups)",
        int(counts.get("duplicates", 0)),
        (
            f"{d['kind']}s, {str(d['reason']).replace('_', ' ')}: "
            + " = ".join(f"{i['id']} {_short(i['title'], 40)!r}" for i in d["items"])
            for d in report.get("duplicates") or ()
        ),
    )
    by_category = counts.get("junk_by_category") or {}
    categories = ", ".join(f"{k} {v}" for k, v in sorted(by_category.items()))
    section(
        f"junk{f' ({categories})' if categories else ''}",
        int(counts.get("junk", 0)),
        (
            f"{j['kind']} {j['id']}  {_short(j['title'], 50)!r}: {j['reason']}"
            for j in report.get("junk") or ()
        ),
    )
    section(
        f"oversized (stories over {limits.get('max_story_points', '?')} points, subtasks over "
        f"{limits.get('max_subtask_hours', '?')} hours)",
        int(counts.get("oversized_stories", 0)) + int(counts.get("oversized_subtasks", 0)),
        (
            f"{o['kind']} {o['id']}  {_short(o['title'], 50)}: {o['size']:g} {o['unit']}"
            for o in report.get("oversized") or ()
        ),
    )
    section(
        "open questions",
        int(counts.get("open_questions", 0)),
        (
            f"{_short(q['text'])}  (card {_short(q['card_title'], 40)})"
            for q in report.get("open_questions") or ()
        ),
    )
    return lines


def questions_lines(questions: Sequence[Mapping[str, Any]]) -> list[str]:
    """``cardflow questions``: every open question, grouped by its card, in card order."""
    if not questions:
        return ["no open questions"]
    lines = [f"{len(questions)} open question{'s' if len(questions) != 1 else ''}"]
    by_card: dict[str, list[Mapping[str, Any]]] = {}
    for question in questions:
        by_card.setdefault(str(question["card_id"]), []).append(question)
    for card_id, asked in by_card.items():
        lines.append(f"{_short(asked[0].get('card_title'), 60)} (card {card_id})")
        lines.extend(
            f"  - {one_line(str(q['text']))}  [{_span(q.get('source_span'))}]" for q in asked
        )
    return lines

"""The monitoring part of the operations guide: its sections, anchors and metric tables.

It is the "Monitoring" part of docs/operations.md:
the tests read whichever of the two holds a section (at any heading level).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = (REPO / "docs" / "operations.md",)

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


@dataclass(frozen=True)
class Section:
    path: Path
    level: int
    title: str
    body: str


def github_anchor(title: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to
    hyphens (duplicates are not numbered here)."""
    text = re.sub(r"[`*_]", "", title.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def sections(path: Path) -> list[Section]:
    """Every heading of a Markdown file with the text up to the next heading of the same or
    a higher level (headings inside code fences are not headings)."""
    if not path.is_file():
        return []
    lines = path.read_text().splitlines()
    headings: list[tuple[int, int, str]] = []
    fenced = False
    for number, line in enumerate(lines):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else _HEADING.match(line)
        if match:
            headings.append((number, len(match.group(1)), match.group(2)))
    found = []
    for index, (number, level, title) in enumerate(headings):
        end = next(
            (n for n, lvl, _ in headings[index + 1 :] if lvl <= level),
            len(lines),
        )
        found.append(Section(path, level, title, "\n".join(lines[number + 1 : end])))
    return found


def find_section(title: str) -> Section | None:
    """The first section titled ``title`` in the monitoring guide or the operations guide."""
    for path in DOCS:
        for section in sections(path):
            if section.title.strip() == title:
                return section
    return None


def anchors() -> dict[str, set[str]]:
    """Guide file name -> the anchors of its headings."""
    return {path.name: {github_anchor(s.title) for s in sections(path)} for path in DOCS}


def table_rows(markdown: str) -> list[list[str]]:
    """The cells of every table row of ``markdown`` (header and delimiter rows left out)."""
    rows = []
    for line in markdown.splitlines():
        line = line.strip()
        if not (line.startswith("|") and line.endswith("|")):
            continue
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line[1:-1])]
        if all(re.fullmatch(r":?-{3,}:?", cell) for cell in cells):
            continue
        rows.append(cells)
    return rows

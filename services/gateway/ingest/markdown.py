"""Markdown into sections and blocks with markdown-it-py: CommonMark with GFM tables.

Only the block rules run (``md.core.ruler.disable("inline")``): they are linear on any input,
while the inline rules are quadratic on hostile text (200,000 ``[`` take seconds). Inline
markup is stripped later from bounded strings (:mod:`services.gateway.ingest.inline`).

Token ``.map`` line ranges give every block its character range in the document, so the cards
cut from it can carry exact spans.
"""

from __future__ import annotations

import re
from functools import lru_cache

from markdown_it import MarkdownIt
from markdown_it.token import Token

from services.gateway.ingest.blocks import Block, BlockKind, Cell, ParsedDocument, Row, Section

FRONT_MATTER_MAX_LINES = 400
# A line that is only an HTML/XML tag (Taskmaster's <context>, <PRD>, a <details> wrapper):
# CommonMark would open an HTML block there and swallow the Markdown below it up to the next
# blank line. The parser sees such lines blanked (same length), the cards keep them.
_TAG_LINE = re.compile(r"[ \t]{0,3}</?[A-Za-z][A-Za-z0-9_-]{0,40}(?:[ \t][^<>\n]{0,200})?/?>[ \t]*")
_FRONT_KEY = re.compile(r"([A-Za-z][A-Za-z0-9_ -]{0,40}):[ \t]{0,8}(.{0,300})")


@lru_cache(maxsize=2)
def _block_parser(indented_code: bool = True) -> MarkdownIt:
    md = MarkdownIt("commonmark").enable("table")
    md.core.ruler.disable("inline")
    if not indented_code:
        # Plain text: an indented line is the author's layout, not code to leave out.
        md.disable("code")
    return md


def line_starts(text: str) -> list[int]:
    """Offset of every line's first character (and one past the end)."""
    starts = [0]
    at = text.find("\n")
    while at >= 0:
        starts.append(at + 1)
        at = text.find("\n", at + 1)
    starts.append(len(text) + 1)
    return starts


def front_matter(lines: list[str]) -> tuple[int, dict[str, str]]:
    """Lines of YAML front matter opening the document (0 when none) and its top-level
    ``key: scalar`` pairs (nested values and lists are left out)."""
    if not lines or lines[0].strip() != "---":
        return 0, {}
    for index in range(1, min(len(lines), FRONT_MATTER_MAX_LINES)):
        if lines[index].strip() in ("---", "..."):
            metadata: dict[str, str] = {}
            for line in lines[1:index]:
                match = _FRONT_KEY.fullmatch(line.rstrip())
                value = match[2].strip().strip("'\"") if match else ""
                if match and value and value not in ("|", ">", "[]", "{}"):
                    metadata[match[1].strip()] = value
            return index + 1, metadata
    return 0, {}


def parse_markdown(text: str, *, indented_code: bool = True) -> ParsedDocument:
    """Sections of ``text`` (already normalised: LF newlines), each with its blocks; with
    ``indented_code=False`` (plain text) indented lines are paragraphs, not code."""
    lines = text.split("\n")
    skip, metadata = front_matter(lines)
    masked = [
        " " * len(line) if index < skip or _is_tag_line(line) else line
        for index, line in enumerate(lines)
    ]
    tokens = _block_parser(indented_code).parse("\n".join(masked))
    starts = line_starts(text)
    builder = _Builder(text, starts, lines)
    builder.walk(tokens)
    return ParsedDocument(text, builder.finish(), metadata)


def _is_tag_line(line: str) -> bool:
    lead = line.lstrip(" \t")[:1]
    return lead == "<" and _TAG_LINE.fullmatch(line) is not None


class _Builder:
    def __init__(self, text: str, starts: list[int], lines: list[str]) -> None:
        self.text = text
        self.starts = starts
        self.lines = lines
        first = Section(level=0, title="", start=0, end=len(text))
        self.sections: list[Section] = [first]
        self.open_headings: list[tuple[int, str]] = []
        self.row_cursor = 0

    def offset(self, line: int) -> int:
        return min(self.starts[min(line, len(self.starts) - 1)], len(self.text))

    def end_of(self, last_line_exclusive: int) -> int:
        """Offset just past the last character of the line before ``last_line_exclusive``."""
        line = max(last_line_exclusive - 1, 0)
        return min(self.starts[min(line + 1, len(self.starts) - 1)] - 1, len(self.text))

    def walk(self, tokens: list[Token]) -> None:
        item_depth = -1
        first_in_item = False
        quote_depth = 0
        index = 0
        while index < len(tokens):
            token = tokens[index]
            kind = token.type
            if kind == "heading_open" and token.map:
                self.heading(int(token.tag[1:]), tokens[index + 1].content, token.map)
                index += 3
                continue
            if kind == "list_item_open":
                item_depth += 1
                first_in_item = True
            elif kind == "list_item_close":
                item_depth -= 1
                first_in_item = False
            elif kind == "blockquote_open":
                quote_depth += 1
            elif kind == "blockquote_close":
                quote_depth -= 1
            elif kind == "paragraph_open" and token.map:
                content = tokens[index + 1].content
                start, end = self.offset(token.map[0]), self.end_of(token.map[1])
                if quote_depth:
                    block = Block(BlockKind.QUOTE, start, end, content)
                elif item_depth >= 0 and first_in_item:
                    # The item's marker sits on its first line, before the paragraph.
                    block = Block(BlockKind.ITEM, start, end, self.text[start:end], item_depth)
                    first_in_item = False
                else:
                    block = Block(BlockKind.PARAGRAPH, start, end, self.text[start:end])
                self.sections[-1].blocks.append(block)
                index += 3
                continue
            elif kind == "table_open" and token.map:
                index = self.table(tokens, index)
                continue
            index += 1

    def heading(self, level: int, raw: str, line_map: list[int]) -> None:
        start = self.offset(line_map[0])
        self.sections[-1].end = start
        while self.open_headings and self.open_headings[-1][0] >= level:
            self.open_headings.pop()
        path = [title for _, title in self.open_headings]
        self.sections.append(Section(level, raw.strip(), start, len(self.text), path))
        self.open_headings.append((level, raw.strip()))

    def table(self, tokens: list[Token], index: int) -> int:
        table_map = tokens[index].map or [0, 0]
        header: list[str] = []
        rows: list[Row] = []
        cells: list[Cell] = []
        row_line = 0
        in_head = False
        index += 1
        while index < len(tokens) and tokens[index].type != "table_close":
            token = tokens[index]
            if token.type == "thead_open":
                in_head = True
            elif token.type == "thead_close":
                in_head = False
            elif token.type == "tr_open":
                cells = []
                row_line = token.map[0] if token.map else row_line + 1
                self.row_cursor = 0
            elif token.type == "inline":
                cells.append(self.cell(token.content, row_line))
            elif token.type == "tr_close":
                if in_head:
                    header = [cell.text for cell in cells]
                else:
                    start, end = self.offset(row_line), self.end_of(row_line + 1)
                    rows.append(Row(tuple(cells), start, end))
            index += 1
        start, end = self.offset(table_map[0]), self.end_of(table_map[1])
        block = Block(
            BlockKind.TABLE,
            start,
            end,
            self.text[start:end],
            header=tuple(header),
            rows=tuple(rows),
        )
        self.sections[-1].blocks.append(block)
        return index + 1

    def cell(self, raw: str, line: int) -> Cell:
        text = raw.strip()
        line_start = self.offset(line)
        line_text = self.lines[line] if line < len(self.lines) else ""
        at = line_text.find(text, self.row_cursor) if text else -1
        if at < 0:
            return Cell(text, line_start, line_start)
        self.row_cursor = at + len(text)
        return Cell(text, line_start + at, line_start + at + len(text))

    def finish(self) -> list[Section]:
        return self.sections

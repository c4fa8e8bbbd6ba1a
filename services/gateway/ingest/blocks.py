"""A document as its readers see it: sections (a heading and the blocks under it), each block
with its character range in the document's text. The Markdown and plain-text readers build
it; :mod:`services.gateway.ingest.document` turns it into cards."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class BlockKind(StrEnum):
    PARAGRAPH = "paragraph"
    ITEM = "item"
    """The first paragraph of a list item (its marker included in the range)."""
    TABLE = "table"
    QUOTE = "quote"
    """A paragraph inside a block quote."""


@dataclass(frozen=True, slots=True)
class Cell:
    text: str
    """The cell's raw Markdown."""
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Row:
    cells: tuple[Cell, ...]
    start: int
    end: int


@dataclass(slots=True)
class Block:
    kind: BlockKind
    start: int
    """Character offset of the block in the document's text."""
    end: int
    text: str
    """The block's own text: ``document[start:end]`` for paragraphs and items; for a quote
    the paragraph without its ``>`` marks (then not a slice)."""
    depth: int = 0
    """List nesting: 0 for a top-level item."""
    header: tuple[str, ...] = ()
    rows: tuple[Row, ...] = ()


@dataclass(slots=True)
class Section:
    level: int
    """Heading level 1-6; 0 for the text before the first heading."""
    title: str
    """The heading's raw text (Markdown)."""
    start: int
    """Offset of the heading line (or of the document's first character)."""
    end: int
    """Offset where the next heading begins (or the document ends)."""
    path: list[str] = field(default_factory=list)
    """The raw titles of the headings above it, outermost first."""
    blocks: list[Block] = field(default_factory=list)


@dataclass(slots=True)
class ParsedDocument:
    text: str
    """The normalised document: every offset above indexes into it."""
    sections: list[Section]
    metadata: dict[str, str] = field(default_factory=dict)
    """From YAML front matter."""

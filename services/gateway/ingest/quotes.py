"""Where a CSV's quoting breaks, found in one linear pass before the csv module reads it.

Python's csv reader with ``strict=False`` reads an unclosed quote as one cell running to the
end of the file (its rows silently merged), and with ``strict=True`` it says only "unexpected
end of data" on the last line. This scan names the line where the broken quoted cell opened:
one that never closes, or one whose closing quote is followed by more text in the same cell
(a stray quote that swallowed rows up to the next one) on a later line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class QuoteProblem:
    offset: int
    """Character offset of the opening quote."""
    line: int
    """1-based line of the opening quote."""
    closed_at_line: int | None
    """Where a stray closing quote was found; None when the quote never closes."""


def _cell_openers(delimiter: str) -> re.Pattern[str]:
    # A quote opens a cell only right after a delimiter or a newline: one character class and
    # one literal, so the search cannot backtrack.
    return re.compile(f'[{re.escape(delimiter)}\n]"')


def find_quote_problem(text: str, delimiter: str) -> QuoteProblem | None:
    """The first broken quoted cell of ``text`` (newlines already LF), or None.

    Linear: each step jumps with ``str.find`` or one search of a fixed two-character pattern,
    and every position is passed at most once."""
    openers = _cell_openers(delimiter)
    ends = (delimiter, "\n")
    length = len(text)
    position = 0
    at_cell_start = True
    while position < length:
        if not at_cell_start or text[position] != '"':
            match = openers.search(text, position)
            if match is None:
                return None
            position = match.start() + 1
            at_cell_start = True
            continue
        opening = position
        cursor = position + 1
        while True:
            closing = text.find('"', cursor)
            if closing < 0:
                return QuoteProblem(opening, _line_of(text, opening), None)
            if text.startswith('""', closing):
                cursor = closing + 2
                continue
            break
        after = closing + 1
        # Text after the closing quote: the csv module glues it on ("ab"c is abc), which is
        # harmless on one line but means swallowed rows when the cell spans lines.
        glued = after < length and text[after] not in ends
        if glued and text.find("\n", opening, closing) >= 0:
            return QuoteProblem(opening, _line_of(text, opening), _line_of(text, closing))
        position = after
        at_cell_start = False
    return None


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1

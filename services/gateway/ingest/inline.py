"""Inline Markdown to readable plain text: emphasis, code marks, links, images and HTML taken
out, their words kept.

markdown-it's inline rules are quadratic on hostile input (200,000 ``[`` take seconds), so
they only ever see a bounded string (:data:`INLINE_PARSE_MAX_CHARS`); anything longer goes
through :func:`_strip_linear`, a hand-written single pass that handles the common marks.
"""

from __future__ import annotations

import re
from functools import lru_cache

from markdown_it import MarkdownIt
from markdown_it.token import Token

INLINE_PARSE_MAX_CHARS = 2000

_SPACES = re.compile(r"\s+")
# Linear: from each "<" the class stops at the next "<" or ">", never going back.
_HTML_TAG = re.compile(r"</?[A-Za-z][^<>\n]{0,300}>")
_LINK = re.compile(r"!?\[([^\[\]\n]{0,500})\]\([^()\s]{0,2000}(?:[ ]{1,20}\"[^\"\n]{0,300}\")?\)")
# A lone * or _ that opens (before a non-space, not inside a word) or closes a span;
# the mark comes first so every other character costs one test.
_EMPHASIS = re.compile(r"[*_](?:(?<=(?<![\w*\\])[*_])(?=[^\s*_])|(?<=[^\s*_\\][*_])(?![\w*]))")
_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")


@lru_cache(maxsize=1)
def _inline_parser() -> MarkdownIt:
    return MarkdownIt("commonmark").enable(["table", "strikethrough"])


def strip_inline(text: str) -> str:
    """``text`` (one inline Markdown string) as plain text on one line, single spaces."""
    if len(text) <= INLINE_PARSE_MAX_CHARS:
        return _strip_short(text)
    return _SPACES.sub(" ", _strip_linear(text)).strip()


@lru_cache(maxsize=8192)
def _strip_short(text: str) -> str:
    # Cached: the readers look at one block's text several times (its role, its statement).
    plain = _render_plain(_inline_parser().parseInline(text))
    return _SPACES.sub(" ", plain).strip()


def _render_plain(tokens: list[Token]) -> str:
    parts: list[str] = []
    for token in tokens:
        for child in token.children or ():
            if child.type in ("text", "code_inline", "image"):
                parts.append(child.content)
            elif child.type in ("softbreak", "hardbreak"):
                parts.append(" ")
    return "".join(parts)


def _strip_linear(text: str) -> str:
    """An approximation of :func:`_render_plain` for long strings, in a few regex passes
    whose every repetition is bounded or stops at a character it cannot cross: HTML tags,
    link and image targets, emphasis and code marks removed, escapes undone."""
    text = _HTML_TAG.sub("", text)
    text = _LINK.sub(r"\1", text)
    for mark in ("**", "__", "~~", "`"):
        text = text.replace(mark, "")
    text = _EMPHASIS.sub("", text)
    return _ESCAPE.sub(r"\1", text)

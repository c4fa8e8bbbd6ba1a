"""Text normalisation shared by the readers: newlines, stray control characters, titles.
Pure and linear: no pattern here can backtrack on user text."""

from __future__ import annotations

import re
import unicodedata

from services.gateway.ingest.model import DERIVED_TITLE_CHARS

_BAD_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")
_BLANK_RUN = re.compile(r"\n{3,}")
_SPACES = re.compile(r"\s+")


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def clean_body(text: str) -> str:
    """NFC, LF newlines, no stray control characters or trailing spaces, one blank line max."""
    text = unicodedata.normalize("NFC", _normalise_newlines(text))
    text = _BAD_CONTROL.sub("", text.replace("\f", "\n").replace("\v", "\n"))
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return _BLANK_RUN.sub("\n\n", text).strip()


def clean_title(text: str) -> str:
    """One line, single spaces."""
    text = unicodedata.normalize("NFC", text)
    return _SPACES.sub(" ", _BAD_CONTROL.sub(" ", text)).strip()


_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MD_EMPHASIS = re.compile(r"(\*\*|__|`)")
_LIST_MARKER = re.compile(r"^\s*(?:[-*+]|\d{1,9}[.)])\s+(?:\[[ xX]\]\s+)?")
_HEADING_MARKER = re.compile(r"^\s*#{1,6}\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)")


def plain_title(text: str) -> str:
    """A title without Markdown decoration (links, bold, code marks)."""
    text = _MD_LINK.sub(r"\1", text)
    return clean_title(_MD_EMPHASIS.sub("", text))


def shorten(text: str, limit: int) -> str:
    """``text`` cut at a word to at most ``limit`` characters, ending in "…" when cut."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:-") + "…"


def derive_title(body: str, limit: int = DERIVED_TITLE_CHARS, *, markdown: bool = True) -> str:
    """A title from a body: the first sentence of its first paragraph (or of its first bullet
    or heading), cut at a word to ``limit`` characters; without Markdown marks (bold, code,
    links) when ``markdown``."""
    lines = body.split("\n")
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        marked = bool(_LIST_MARKER.match(line) or _HEADING_MARKER.match(line))
        parts = [_HEADING_MARKER.sub("", _LIST_MARKER.sub("", line))]
        if not marked:
            for following in lines[index + 1 :]:
                if not following.strip() or _LIST_MARKER.match(following):
                    break
                if _HEADING_MARKER.match(following) or not any(c.isalnum() for c in following):
                    break
                parts.append(following)
        joined = " ".join(parts)
        text = plain_title(joined) if markdown else clean_title(joined)
        if not text:
            continue
        sentence = _SENTENCE_END.split(text, maxsplit=1)[0]
        if sentence.endswith(".") and not sentence.endswith(".."):
            sentence = sentence[:-1]
        return shorten(sentence.rstrip(":"), limit)
    return ""

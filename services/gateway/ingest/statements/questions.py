"""Open questions in the author's text: ``[NEEDS CLARIFICATION: ...]`` markers, TBDs and
sentences that ask. ``str.find`` over the text and one bounded pattern: linear."""

from __future__ import annotations

import re

from contracts.backlog import OpenQuestion
from services.gateway.ingest.inline import strip_inline
from services.gateway.ingest.spans import span

CLARIFY_MARK = "[NEEDS CLARIFICATION"
_TBD = re.compile(r"\b(?:TBD|TBC|TBA|TODO)\b")
_QUESTION_LEADS = ("open question", "question:", "q:", "unclear:", "unresolved:")


def is_question(text: str) -> bool:
    """``text`` asks rather than states: it ends with ``?``, is or holds a ``TBD``/``TBC``/
    ``TODO``, a ``[NEEDS CLARIFICATION: ...]`` marker, or opens with "Open question",
    "Question:"."""
    plain = text.strip().rstrip("*_ ")
    lowered = plain.lower()
    return (
        plain.endswith("?")
        or CLARIFY_MARK.lower() in lowered
        or bool(_TBD.search(plain))
        or lowered.startswith(_QUESTION_LEADS)
    )


def questions_in(text: str, start: int = 0) -> list[OpenQuestion]:
    """The open questions in ``text`` (raw, at offset ``start`` of the body): each
    ``[NEEDS CLARIFICATION: ...]`` marker with its own span; otherwise, when the whole text
    is a question (:func:`is_question`), the whole text."""
    found: list[OpenQuestion] = []
    position = 0
    upper = text.upper()
    while True:
        at = upper.find(CLARIFY_MARK, position)
        if at < 0:
            break
        end = text.find("]", at)
        end = len(text) if end < 0 else end + 1
        inner = text[at + 1 : end - 1 if text[end - 1 : end] == "]" else end]
        plain = strip_inline(inner.split(":", 1)[1] if ":" in inner else inner)
        found.append(
            OpenQuestion(
                text=plain or strip_inline(inner), source_span=span(start + at, start + end)
            )
        )
        position = end
    if found:
        return found
    if is_question(text):
        stripped = text.strip()
        offset = text.find(stripped[:1]) if stripped else 0
        plain = strip_inline(stripped)
        if plain:
            return [
                OpenQuestion(
                    text=plain, source_span=span(start + offset, start + offset + len(stripped))
                )
            ]
    return []

"""Small readings of one block's or line's plain text, each bounded: a list marker taken
off, a label ("Performance:"), a term and its definition, a void value ("Not applicable"), an
item put out of scope or later, a paragraph's sentences; the labels that name context and
criteria."""

from __future__ import annotations

import re
from collections.abc import Iterator

from services.gateway.ingest.blocks import Block, BlockKind
from services.gateway.ingest.inline import strip_inline
from services.gateway.ingest.statements.author_ids import author_id_of
from services.gateway.ingest.statements.forms import is_requirement_sentence

PLAIN_MAX_CHARS = 4000
"""A block's plain text is read from at most this many characters (a requirement is never
longer; a 5 MB paragraph is not stripped whole)."""

# What a label names ("**Rationale**: ...", "Acceptance Criteria:"): read as context, as
# success criteria, or as the criteria of the requirement above.
CONTEXT_LABELS = frozenset(
    (
        "why this priority",
        "independent test",
        "rationale",
        "note",
        "notes",
        "context",
        "background",
        "description",
        "what it does",
        "current state",
        "current status",
        "example",
        "examples",
        "dependencies",
        "purpose",
        "goal",
        "problem",
        "value",
        "why",
        "impact",
        "user impact",
        "business value",
        "test",
        "how to test",
        "why it's important",
        "why it matters",
        "how it should work",
        "how it will work",
        "how it works",
        "status",
        "threat model",
    )
)
SUCCESS_LABELS = frozenset(
    ("success criteria", "success criterion", "success metric", "success metrics")
)
CRITERIA_LABELS = frozenset(
    (
        "acceptance scenarios",
        "acceptance criteria",
        "acceptance criterion",
        "scenarios",
        "criteria",
        "definition of done",
        "acceptance tests",
    )
)
_OUT_OF_SCOPE = ("out of scope", "not in scope", "non-goal", "non goal", "won't have", "later")
_SENTENCE_END = re.compile(r"[.!?](?=[ \t\n]{1,20}[\"'(*_`A-Z0-9])")
_TERM_SPLIT = re.compile(r"[ \t]{1,3}(?:-|\u2013|\u2014)[ \t]{1,3}")


def lists_requirements(blocks: list[Block]) -> bool:
    """A list under a heading that names nothing is a requirements list when one of its items
    reads as one (a modal, a user story, an EARS line or the author's id)."""
    for block in blocks:
        if block.kind is BlockKind.ITEM and block.end - block.start <= PLAIN_MAX_CHARS:
            plain = without_marker(strip_inline(block.text))
            if author_id_of(plain)[0] or is_requirement_sentence(plain):
                return True
    return False


def without_marker(plain: str) -> str:
    """An item's plain text without its list marker ("- ", "1. ", "[ ] ")."""
    stripped = plain.lstrip()
    for marker in ("- ", "* ", "+ "):
        if stripped.startswith(marker):
            stripped = stripped[2:].lstrip()
            break
    else:
        digits = len(stripped) - len(stripped.lstrip("0123456789"))
        if 0 < digits <= 9 and stripped[digits : digits + 1] in (".", ")"):
            stripped = stripped[digits + 1 :].lstrip()
    if stripped.startswith(("[ ] ", "[x] ", "[X] ")):
        stripped = stripped[4:]
    return stripped


_VOID = ("not applicable", "n/a", "none", "no direct impact", "not relevant", "nothing")


def is_void(text: str) -> bool:
    """ "Scalability: Not applicable. Each trainee runs their own clone": the author says
    there is no requirement here."""
    _, colon, rest = text.partition(":")
    value = (rest if colon else text).strip(" .").lower()
    return any(
        value == word or (value.startswith(word) and not value[len(word)].isalnum())
        for word in _VOID
    )


_LATER_ENDINGS = (", later.", ", later", "(later)", "(later).", "in a later release.")


def not_now(plain: str) -> bool:
    """An item the author puts out of scope or later ("Out of scope: ...", "It would be nice
    to have a forecast, later.")."""
    lower = plain[:300].lower().rstrip()
    return (
        lower.startswith(_OUT_OF_SCOPE)
        or lower.startswith(("it would be nice", "nice to have", "nice-to-have"))
        or lower.endswith(_LATER_ENDINGS)
    )


def is_label(plain: str) -> bool:
    """An item that only introduces the items under it ("Performance:")."""
    return plain.endswith(":") and len(plain) <= 80 and "." not in plain[:-1]


def label_of(plain: str) -> tuple[str, str]:
    key, colon, rest = plain.partition(":")
    if not colon or len(key) > 40:
        return "", plain
    return " ".join(key.lower().split()), rest.strip()


def has_id_lead(line: str) -> bool:
    return author_id_of(strip_inline(without_marker(line[:200])))[0] is not None


def term_of(line: str) -> tuple[str, str]:
    """``Term: definition`` or ``Term - definition``; ("", "") when the line is neither."""
    line = without_marker(line.strip())
    key, colon, rest = line.partition(":")
    if colon and 0 < len(key) <= 80:
        return key.strip(), rest.strip()
    match = _TERM_SPLIT.search(line[:200])
    if match:
        return line[: match.start()].strip(), line[match.end() :].strip()
    return "", ""


def sentences(text: str) -> Iterator[tuple[int, int]]:
    """Sentence ranges of a paragraph (at most its first :data:`PLAIN_MAX_CHARS`)."""
    text = text[:PLAIN_MAX_CHARS]
    start = 0
    for match in _SENTENCE_END.finditer(text):
        end = match.end()
        if text[start:end].strip():
            yield start + (len(text[start:end]) - len(text[start:end].lstrip())), end
        start = end
    if text[start:].strip():
        yield start + (len(text[start:]) - len(text[start:].lstrip())), len(text.rstrip())

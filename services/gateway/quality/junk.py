"""Why a text is junk as a backlog item's title or a requirement: markup, metadata, a
question or a fragment. Plain string operations (no regex): linear in the text's length."""

from __future__ import annotations

from itertools import pairwise

from services.gateway.quality.thresholds import MIN_TITLE_CHARS, MIN_TITLE_WORDS
from services.gateway.quality.words import word_set

METADATA_KEYS = frozenset(
    {
        "version",
        "owner",
        "owners",
        "status",
        "date",
        "author",
        "authors",
        "input",
        "created",
        "updated",
        "last updated",
        "reviewer",
        "reviewers",
        "feature branch",
        "revision",
    }
)
# A text ending on one of these words stops mid-phrase ("... the first release of the").
# Particles that end phrasal verbs ("typed in", "log on", "opt out") are left out.
DANGLING_WORDS = word_set(
    "the a an of to for with and or from that which as than into per via is are be our their "
    "its before after until unless because if when while whose but nor next"
)
# The subject is missing: "Be attached by customers from the web portal".
SUBJECTLESS_STARTS = word_set("be been being")
ARTICLES = frozenset({"the", "a", "an"})
PREPOSITIONS = word_set("of to for with in on at by from into per via")
CONTINUATIONS = frozenset({"and", "or", "but", "nor"})
# The headings documents group requirements under: a title that is one names no item.
SECTION_HEADINGS = frozenset(
    {
        "overview",
        "introduction",
        "background",
        "summary",
        "scope",
        "out of scope",
        "goals",
        "non-goals",
        "non goals",
        "assumptions",
        "edge cases",
        "key entities",
        "glossary",
        "notes",
        "requirements",
        "functional requirements",
        "non-functional requirements",
        "non functional requirements",
        "success criteria",
        "acceptance criteria",
        "acceptance scenarios",
        "user scenarios & testing",
        "user scenarios and testing",
        "open questions",
        "dependencies",
        "risks",
        "constraints",
    }
)
QUESTION_MARKERS = ("TBD", "TBC", "TODO")


def junk_reason(text: str, *, min_words: int = MIN_TITLE_WORDS) -> str | None:
    """Why ``text`` is not a backlog item's title or a requirement (``"markup: ..."``,
    ``"metadata: ..."``, ``"question: ..."``, ``"fragment: ..."``), or None when it reads as
    one. Linear in the text's length."""
    stripped = text.strip()
    if not stripped:
        return "fragment: empty"
    return (
        block_markup(stripped)
        or _metadata(stripped)
        or inline_markup(stripped)
        or _question(stripped)
        or _fragment(stripped, min_words)
    )


def junk_category(reason: str) -> str:
    """``"markup: a quote"`` -> ``"markup"``."""
    return reason.partition(":")[0]


def block_markup(text: str) -> str | None:
    first = text[0]
    if first == ">":
        return "markup: a quote ('>')"
    if first == "|":
        return "markup: a table row"
    if first == "#":
        return "markup: a heading marker ('#')"
    if text.startswith(("```", "~~~")):
        return "markup: a code fence"
    if first == "<":
        return "markup: an HTML tag"
    if text.startswith(("- [ ]", "- [x]", "* [ ]")):
        return "markup: a checklist marker"
    lowered = text.lower()
    for keyword in ("given", "when", "then", "and"):
        for mark in ("**", "__"):
            if lowered.startswith(f"{mark}{keyword}{mark}"):
                return "markup: a bold Given/When/Then scenario step"
    return None


def _unbolded(text: str) -> str:
    return text.replace("**", "").replace("__", "").replace("`", "").strip()


def _metadata(text: str) -> str | None:
    plain = _unbolded(text)
    key, colon, _ = plain.partition(":")
    if colon and key.strip().lower() in METADATA_KEYS:
        return f"metadata: '{key.strip()}:'"
    words = plain.split(maxsplit=2)
    # "Version 0.9, owner: ..." names no key with a colon but is the document's version line.
    if len(words) >= 2 and words[0].lower() in ("version", "v", "revision", "rev"):
        number = words[1].rstrip(",;").lstrip("vV")
        if number and number.replace(".", "").isdigit():
            return f"metadata: '{words[0]} {words[1].rstrip(',;')}'"
    return None


def inline_markup(text: str) -> str | None:
    if "**" in text or "__" in text:
        return "markup: bold marks ('**')"
    if "`" in text:
        return "markup: code marks ('`')"
    if text.count("|") >= 2:
        return "markup: table pipes"
    if "](" in text and "[" in text:
        return "markup: a Markdown link"
    return None


def _question(text: str) -> str | None:
    if text.rstrip(" .\"')]*").endswith("?"):
        return "question: ends with '?'"
    if "NEEDS CLARIFICATION" in text.upper():
        return "question: NEEDS CLARIFICATION"
    words = [w.strip(".,;:!()[]\"'*") for w in text.split()]
    for marker in QUESTION_MARKERS:
        if marker in words:
            return f"question: {marker}"
    if any(w.endswith("?") for w in text.split()):
        return "question: asks something ('?')"
    return None


def _fragment(text: str, min_words: int) -> str | None:
    raw = [w.strip(".,;:!()[]").lower() for w in text.split()]
    words = [w.strip("\"'") for w in raw]
    words = [w for w in words if w]
    if len(text) < MIN_TITLE_CHARS or len(words) < min_words:
        if " ".join(words) in SECTION_HEADINGS:
            return "fragment: a section heading, not an item"
        return f"fragment: too short ({len(words)} word{'s' if len(words) != 1 else ''})"
    if not any(any(c.isalpha() for c in w) for w in words):
        return "fragment: no words"
    if " ".join(words) in SECTION_HEADINGS:
        return "fragment: a section heading, not an item"
    if text.rstrip().endswith((":", ",", ";", "-", "\u2014", "\u2013")):
        return "fragment: ends mid-sentence"
    if words[-1] in DANGLING_WORDS:
        return f"fragment: ends on '{words[-1]}'"
    if words[0] in CONTINUATIONS:
        return f"fragment: starts with '{words[0]}'"
    if words[0] in SUBJECTLESS_STARTS:
        return f"fragment: starts with '{words[0]}' (its subject is missing)"
    # Quotes kept here: 'the "on the way" message' is no dangling "the on".
    for before, after in pairwise(raw):
        if before in ARTICLES and (after in PREPOSITIONS or after in ARTICLES):
            return f"fragment: '{before} {after}'"
    if words[:2] == ["this", "document"] or words[:2] == ["this", "prd"]:
        return "fragment: describes the document, not an item"
    return None

"""The priority an author gives a requirement: a bare value (a Priority or MoSCoW cell), a
marked one ("Priority: P0", "[P2]"), else its first RFC 2119 keyword in capitals. Bounded
patterns only."""

from __future__ import annotations

import re

_PRIORITY_VALUES = {
    "p0": "P0",
    "p1": "P1",
    "p2": "P2",
    "p3": "P3",
    "p4": "P4",
    "must": "MUST",
    "must have": "Must have",
    "must-have": "Must have",
    "should": "SHOULD",
    "should have": "Should have",
    "should-have": "Should have",
    "could": "Could have",
    "could have": "Could have",
    "could-have": "Could have",
    "won't": "Won't have",
    "won't have": "Won't have",
    "wont have": "Won't have",
    "will not have": "Won't have",
    "may": "MAY",
    "critical": "Critical",
    "highest": "Highest",
    "high": "High",
    "medium": "Medium",
    "normal": "Medium",
    "low": "Low",
    "lowest": "Lowest",
    "blocker": "Blocker",
    "major": "Major",
    "minor": "Minor",
    "trivial": "Trivial",
}
# "Priority: P0", "(Priority: P1)", "priority - high", "MoSCoW: Must"; the value is bounded.
_PRIORITY_MARK = re.compile(
    r"(?:priority|moscow)\**[ \t]{0,3}[:=\-\u2013\u2014][ \t]{0,3}\**[ \t]{0,3}"
    r"(?P<value>[A-Za-z0-9'\u2019\- ]{1,20})",
    re.IGNORECASE,
)
_BRACKET_PRIORITY = re.compile(r"[\[(](?P<value>P[0-4])[\])]")
_RFC2119 = re.compile(r"\b(MUST(?: NOT)?|SHALL(?: NOT)?|SHOULD(?: NOT)?|MAY|REQUIRED)\b")


def priority_value(text: str) -> str | None:
    """``text`` read as a priority value on its own (a Priority or MoSCoW cell): ``"P1"``,
    ``"High"``, ``"Must have"``, ``"MUST"``; None when it is not one."""
    key = text.strip().strip("*_`[]()").strip().lower().replace("\u2019", "'")
    key = " ".join(key.split())
    if key in _PRIORITY_VALUES:
        return _PRIORITY_VALUES[key]
    first = key.split(" ", 1)[0].rstrip(",;.:")
    if first in ("p0", "p1", "p2", "p3", "p4"):
        return first.upper()
    return None


def author_priority_of(text: str) -> str | None:
    """The priority the author wrote in ``text``, as written (normalised in case only):
    a bare value (``"P1"``, ``"High"``, ``"Must have"``); else a marked one (``"Priority:
    P0 — core"``, ``"(Priority: P1)"``, ``"[P2]"``, ``"MoSCoW: Could"``); else the first RFC
    2119 keyword in capitals (``MUST``, ``SHALL NOT``, ``SHOULD``, ``MAY``). None when the text
    states none."""
    bare = priority_value(text) if len(text) <= 30 else None
    if bare:
        return bare
    for match in _PRIORITY_MARK.finditer(text):
        value = priority_value(match["value"])
        if value:
            return value
    bracket = _BRACKET_PRIORITY.search(text)
    if bracket:
        return bracket["value"]
    return modal_of(text)


def modal_of(text: str) -> str | None:
    """The first RFC 2119 keyword written in capitals (``MUST``, ``SHALL NOT``, ...)."""
    match = _RFC2119.search(text)
    return match[1] if match else None


_TRAILING_PRIORITY = re.compile(r"[ \t]{0,5}\((?:priority|moscow)[ \t]{0,3}:[^()\n]{1,30}\)$", re.I)


def without_priority_mark(text: str) -> str:
    """``"Login (Priority: P1)"`` → ``"Login"``."""
    return _TRAILING_PRIORITY.sub("", text).rstrip()

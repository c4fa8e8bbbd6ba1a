"""Author ids leading a requirement ("FR-001", "REQ-12", "NFR-2", "AC-1.2"): bounded pieces
only, anchored at the start, so linear on any input."""

from __future__ import annotations

import re

# "FR-001", "FR1", "REQ-12", "NFR-2", "SC-001", "US-3", "AC-1.2", "BR_04", "FR-AUTH-01";
# bounded pieces only, anchored at the start.
_ID = r"[A-Z]{1,6}(?:[-_][A-Z]{1,8}){0,2}[-_ ]?\d{1,5}(?:\.\d{1,4}){0,3}[a-z]?"
# An aside may stand between the id and its colon: "FR-3.1 (vision): ...".
_ID_LEAD = re.compile(
    rf"[ \t]{{0,3}}(?:\*\*|__)?\[?(?P<id>{_ID})\]?(?:\*\*|__)?"
    r"(?:[ \t]{1,3}[*_]{0,2}\([^()\n]{1,80}\)[*_]{0,2})?[ \t]{0,3}"
    r"(?:[:)\u2013\u2014]|\.(?![0-9A-Za-z])|-(?=[ \t]))(?:\*\*|__)?[ \t]{0,3}"
)
_ID_ONLY = re.compile(rf"(?:{_ID})")
_PRIORITY_LIKE = re.compile(r"P[0-4]")


def author_id_of(text: str) -> tuple[str | None, str]:
    """The author's id leading ``text`` and the text after it: ``"**FR-001**: System MUST x"``
    → ``("FR-001", "System MUST x")``; ``"FR1: Users can y"`` → ``("FR1", "Users can y")``.
    An id is letters then digits (``FR-001``, ``REQ-12``, ``SC-001``, ``US-3``, ``NFR-2``,
    ``AC-1.2``), followed by ``:``, ``.``, ``)``, a dash or an en/em dash. ``P0``-``P4`` are
    priorities, never ids. ``(None, text)`` when there is none."""
    match = _ID_LEAD.match(text)
    if not match or _PRIORITY_LIKE.fullmatch(match["id"]):
        return None, text
    return match["id"].replace(" ", "-"), text[match.end() :]


def is_author_id(text: str) -> bool:
    """``text`` (a table cell, a key) is an id such as ``FR-01`` or ``US-3``, not a priority."""
    value = text.strip().strip("*_[]`")
    return bool(_ID_ONLY.fullmatch(value)) and not _PRIORITY_LIKE.fullmatch(value)

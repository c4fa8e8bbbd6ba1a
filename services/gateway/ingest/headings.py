"""A heading as a title: markup stripped, numbering ("4.1.2 "), template notes
("(mandatory)"), status symbols and a trailing "(Priority: P1)" dropped; a user story's
number taken off its title. Bounded patterns only: linear."""

from __future__ import annotations

import re
import unicodedata

from services.gateway.ingest.inline import strip_inline
from services.gateway.ingest.statements.priorities import without_priority_mark

HEADING_MAX_CHARS = 300

_NUMBERING = re.compile(
    r"(?:(?:section|chapter|part)[ \t]{1,5})?[0-9]{1,4}(?:\.[0-9]{1,4}){0,6}\.?[ \t]{1,5}",
    re.IGNORECASE,
)
_STORY_PREFIX = re.compile(
    r"(?:user[ \t]{0,3})?story[ \t]{0,3}#?[0-9]{1,4}[ \t]{0,3}[-:.\u2013\u2014]?[ \t]{0,3}",
    re.IGNORECASE,
)
_TEMPLATE_NOTE = re.compile(
    r"[ \t]{0,5}\((?:mandatory|optional|include if[^()\n]{0,120})\)", re.IGNORECASE
)


def heading_name(raw: str) -> str:
    """A heading as a title: markup stripped, leading numbering ("4.1.2 ") and template notes
    ("(mandatory)") and a trailing "(Priority: P1)" dropped."""
    plain = _without_status(strip_inline(raw[:HEADING_MAX_CHARS]))
    plain = _TEMPLATE_NOTE.sub("", plain)
    numbering = _NUMBERING.match(plain)
    if numbering and numbering.end() < len(plain):
        plain = plain[numbering.end() :]
    return without_priority_mark(plain).strip(" :-\u2013\u2014")


def _without_status(plain: str) -> str:
    """ "🚨 Tool filtering ✅ WORKING" → "Tool filtering": a status symbol and what follows it
    annotate the heading, they do not name it."""
    start = 0
    while start < len(plain) and (
        unicodedata.category(plain[start]) == "So" or plain[start] == " "
    ):
        start += 1
    for index in range(start, len(plain)):
        if unicodedata.category(plain[index]) == "So":
            return plain[start:index].strip()
    return plain[start:]


def story_title(name: str) -> str:
    """ "User Story 1 - Draw arrows" → "Draw arrows"."""
    prefix = _STORY_PREFIX.match(name)
    rest = name[prefix.end() :].strip() if prefix else name
    return rest or name

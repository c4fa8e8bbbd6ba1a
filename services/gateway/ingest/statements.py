"""Requirement statements as the author wrote them: shared by every reader (Markdown, text,
tracker rows), so one sentence is read the same wherever it comes from.

Everything here is pure and linear: the patterns are anchored, bounded or stop at a
character they cannot cross, and the rest is ``str.find``/``in`` over lower-cased text.

The main entry is :func:`statement`; the helpers (:func:`author_priority_of`,
:func:`author_id_of`, :func:`criteria_from_lines`, :func:`is_question`,
:func:`questions_in`, :func:`kind_of`, :func:`user_story_of`, :func:`is_ears`,
:func:`modal_of`) are public for readers that need one piece.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from contracts.backlog import AcceptanceCriterion, OpenQuestion, RequirementKind, SourceSpan
from contracts.documents import StatedRequirement, StatementForm, UserStoryParts
from services.gateway.ingest.inline import strip_inline

# --- author ids -----------------------------------------------------------------------------

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


# --- priorities -----------------------------------------------------------------------------

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


# --- questions ------------------------------------------------------------------------------

_CLARIFY = "[NEEDS CLARIFICATION"
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
        or _CLARIFY.lower() in lowered
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
        at = upper.find(_CLARIFY, position)
        if at < 0:
            break
        end = text.find("]", at)
        end = len(text) if end < 0 else end + 1
        inner = text[at + 1 : end - 1 if text[end - 1 : end] == "]" else end]
        plain = strip_inline(inner.split(":", 1)[1] if ":" in inner else inner)
        found.append(
            OpenQuestion(
                text=plain or strip_inline(inner), source_span=_span(start + at, start + end)
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
                    text=plain, source_span=_span(start + offset, start + offset + len(stripped))
                )
            ]
    return []


# --- forms ----------------------------------------------------------------------------------

_STORY_LEADS = ("user story:", "story:", "user story -", "user story")
_WANTS = (
    " i want to ",
    " i want ",
    " i need to ",
    " i need ",
    " i can ",
    " i would like to ",
    " i'd like to ",
    " i wish to ",
)
_BENEFITS = (" so that ", " in order to ", " so i can ", " so ")


def user_story_of(plain: str) -> UserStoryParts | None:
    """``"As a dispatcher, I want to see jobs, so that I can plan"`` → its three parts
    (``so_that`` may be empty); None when ``plain`` is not a user story."""
    lowered = plain.lower()
    for lead in _STORY_LEADS:
        if lowered.startswith(lead):
            cut = len(lead)
            plain, lowered = plain[cut:].lstrip(" :-*"), lowered[cut:].lstrip(" :-*")
            break
    if lowered.startswith("as an "):
        role_at = 6
    elif lowered.startswith("as a "):
        role_at = 5
    else:
        return None
    for want in _WANTS:
        at = lowered.find(want, role_at)
        comma = lowered.find(",", role_at)
        if at < 0 and comma >= 0 and lowered.startswith(want[1:], comma + 2):
            at = comma + 1
        if at >= 0:
            role = plain[role_at:at].strip(" ,")
            rest_at = at + len(want)
            break
    else:
        return None
    goal, benefit = plain[rest_at:], ""
    lowered_rest = lowered[rest_at:]
    for marker in _BENEFITS[:3]:
        at = lowered_rest.find(marker)
        if at < 0:
            at = lowered_rest.find(marker.replace(" ", ", ", 1))
            if at >= 0:
                at += 1
        if at >= 0:
            goal, benefit = plain[rest_at : rest_at + at], plain[rest_at + at + len(marker) :]
            break
    if not role or not goal.strip(" ,."):
        return None
    return UserStoryParts(
        as_a=role, i_want=goal.strip(" ,"), so_that=benefit.strip(" ,").rstrip(".")
    )


_EARS_LEADS = ("when ", "if ", "while ", "where ", "after ", "once ", "upon ")


def is_ears(plain: str) -> bool:
    """An EARS sentence: ``WHEN``/``IF``/``WHILE``/``WHERE`` ... ``SHALL`` ..., or
    ``THE <system> SHALL ...`` (any case)."""
    lowered = plain.lower()
    if " shall " not in f" {lowered} ":
        return False
    return lowered.startswith(_EARS_LEADS) or lowered.startswith("the ")


_LOWER_MODALS = (
    " must ",
    " shall ",
    " should ",
    " needs to ",
    " need to ",
    " is required to ",
    " are required to ",
    " has to ",
    " have to ",
    " will be able to ",
    " can ",
    " allows ",
    " allow ",
    " supports ",
    " support ",
    " provides ",
    " enables ",
)


def is_requirement_sentence(plain: str) -> bool:
    """``plain`` states what something must do: a user story, an EARS line, an RFC 2119
    keyword in capitals, or a modal or capability verb ("must", "should", "needs to",
    "can", "allows", "supports")."""
    if modal_of(plain) or user_story_of(plain) or is_ears(plain):
        return True
    lowered = f" {plain.lower()} "
    return any(modal in lowered for modal in _LOWER_MODALS)


# --- kinds ----------------------------------------------------------------------------------

_NFR_WORDS = (
    "performance",
    "latency",
    "response time",
    "throughput",
    "within ",
    " ms",
    "millisecond",
    "seconds",
    "per second",
    "availability",
    "uptime",
    "99.",
    "secure",
    "security",
    "encrypt",
    "authentication",
    "gdpr",
    "privacy",
    "accessib",
    "wcag",
    "screen reader",
    "usability",
    "scalab",
    "concurrent users",
    "reliab",
    "recover",
    "backup",
    "audit log",
    "p95",
    "p99",
    "load time",
    "localiz",
    "internationaliz",
    "maintainab",
    "observab",
)
_CONSTRAINT_WORDS = (
    "must use ",
    "must run on ",
    "must be built with",
    "must be written in",
    "is limited to",
    "are limited to",
    "must be compatible with",
    "must be deployed",
    "must support only",
    "must be hosted",
    "must integrate with",
    "shall use ",
    "shall run on ",
    "must not exceed",
    "budget",
    "licen",
)
_SUCCESS_SECTIONS = (
    "success criteria",
    "success metric",
    "metrics",
    "kpi",
    "measurable outcome",
    "outcomes",
    "goals and metrics",
)
_NFR_SECTIONS = (
    "non-functional",
    "nonfunctional",
    "non functional",
    "quality attribute",
    "performance",
    "security",
    "accessibility",
    "reliability",
    "usability",
)
_CONSTRAINT_SECTIONS = ("constraint", "technical requirement", "technology", "assumptions")


def kind_of(text: str, *, author_id: str | None = None, section: str = "") -> RequirementKind:
    """The requirement's kind: by the author's id (``SC-`` success criterion; ``NFR``, ``NF``,
    ``PERF``, ``SEC`` non-functional; ``CON``, ``TC`` constraint), else by the section it
    sits in (Success Criteria/Metrics, Non-functional, Constraints), else by its words
    (performance, security, availability, accessibility, usability → non_functional; "must
    use", "must run on", "is limited to" → constraint); functional otherwise."""
    prefix = (author_id or "").upper().split("-", 1)[0].rstrip("0123456789_ ")
    if prefix in ("SC", "KPI", "M", "SM"):
        return RequirementKind.SUCCESS_CRITERION
    if prefix in ("NFR", "NF", "PERF", "SEC", "NR", "QR", "Q"):
        return RequirementKind.NON_FUNCTIONAL
    if prefix in ("CON", "TC", "C", "CR"):
        return RequirementKind.CONSTRAINT
    heading = section.lower()
    if any(word in heading for word in _SUCCESS_SECTIONS):
        return RequirementKind.SUCCESS_CRITERION
    if any(word in heading for word in _NFR_SECTIONS):
        return RequirementKind.NON_FUNCTIONAL
    if any(word in heading for word in _CONSTRAINT_SECTIONS):
        return RequirementKind.CONSTRAINT
    lowered = f" {text.lower()} "
    if any(word in lowered for word in _CONSTRAINT_WORDS):
        return RequirementKind.CONSTRAINT
    if any(word in lowered for word in _NFR_WORDS):
        return RequirementKind.NON_FUNCTIONAL
    return RequirementKind.FUNCTIONAL


# --- Given/When/Then ------------------------------------------------------------------------

_LIST_LEAD = re.compile(r"[ \t]{0,12}(?:[-*+]|\d{1,9}[.)])[ \t]{1,8}(?:\[[ xX]\][ \t]{1,8})?")


_GWT_WORD = re.compile(r"(?<![^ ,;])(given|when|then|and|but)(?=[ ,:]|$)", re.IGNORECASE)


def list_marker_end(text: str) -> int:
    """Where the text after a leading list marker ("- ", "1. ", "- [ ] ") begins; 0 when
    there is none."""
    lead = _LIST_LEAD.match(text)
    return lead.end() if lead else 0


def _gwt_parts(plain: str) -> list[tuple[str, str]]:
    """``"Given x, When y, Then z"`` → ``[("given", "x"), ("when", "y"), ("then", "z")]``:
    split at each keyword that opens the text or follows a space or comma (``And``/``But``
    only at the start or after another keyword)."""
    cuts: list[tuple[int, str]] = []
    for match in _GWT_WORD.finditer(plain):
        if match.start() != 0 and match[1][0].islower():
            continue  # "selects the tool and draws a line": a keyword is written capitalised
        word = match[1].lower()
        if word in ("and", "but") and not cuts and match.start() != 0:
            continue
        cuts.append((match.start(), word))
    parts: list[tuple[str, str]] = []
    for index, (at, word) in enumerate(cuts):
        end = cuts[index + 1][0] if index + 1 < len(cuts) else len(plain)
        parts.append((word, plain[at + len(word) : end].strip(" ,;:.")))
    return parts


def criteria_from_lines(lines: Iterable[str]) -> list[AcceptanceCriterion]:
    """Given/When/Then scenarios in ``lines`` (raw Markdown or plain): one line per scenario
    (``"1. **Given** x, **When** y, **Then** z"``) or one clause per line (``Given x`` /
    ``And x2`` / ``When y`` / ``Then z``). ``And``/``But`` extend the clause before; a
    ``Given`` (or a ``When`` after a ``Then``) opens the next scenario. A scenario needs a
    ``Then``; ``text`` is the author's wording (markup stripped) of its line(s). Lines
    with no keyword are ignored."""
    criteria: list[AcceptanceCriterion] = []
    current: dict[str, list[str]] = {}
    wording: list[str] = []
    last = ""

    def close() -> None:
        if current.get("then"):
            criteria.append(
                AcceptanceCriterion(
                    given="; ".join(current.get("given", [])),
                    when="; ".join(current.get("when", [])),
                    then="; ".join(current["then"]),
                    text=" ".join(wording),
                )
            )
        current.clear()
        wording.clear()

    for line in lines:
        lead = _LIST_LEAD.match(line)
        plain = strip_inline(line[lead.end() :] if lead else line)
        parts = _gwt_parts(plain)
        if not parts or (parts[0][1] == "" and len(parts) == 1):
            continue
        if parts[0][0] in ("and", "but") and not current:
            continue
        for index, (word, clause) in enumerate(parts):
            if word in ("and", "but"):
                word = last or "given"
            opens_next = word == "given" and (current.get("when") or current.get("then"))
            if (
                opens_next
                or (word == "when" and current.get("then"))
                or (index == 0 and lead is not None and current.get("then"))
            ):
                close()
            if clause:
                current.setdefault(word, []).append(clause)
            last = word
        wording.append(plain)
    close()
    return criteria


def is_scenario_line(line: str) -> bool:
    """A Given/When/Then line (``"1. **Given** x, **When** y"``, ``"Then z"``)."""
    lead = _LIST_LEAD.match(line)
    plain = strip_inline(line[lead.end() :] if lead else line).lower()
    return plain.startswith(("given ", "given,", "when ", "then ", "and ", "but ", "scenario"))


# --- the statement --------------------------------------------------------------------------

_METADATA_KEYS = frozenset(
    (
        "version",
        "owner",
        "owners",
        "status",
        "date",
        "author",
        "authors",
        "created",
        "updated",
        "last updated",
        "revision",
        "input",
        "feature branch",
        "branch",
        "reviewers",
        "reviewer",
        "approver",
        "approvers",
        "team",
        "stakeholders",
        "document",
        "doc id",
        "id",
        "tags",
        "category",
        "epic",
        "sprint",
        "release",
        "target release",
        "contact",
        "prepared by",
        "editor",
        "state",
        "priority",
        "jira",
        "ticket",
        "link",
        "links",
    )
)


def metadata_of(plain: str) -> tuple[str, str] | None:
    """``plain`` (markup stripped) is a metadata line, ``Key: value`` with a known key
    (Version, Owner, Status, Date, Author, Created, Input, Feature Branch, ...):
    ``(key, value)``; else None."""
    key, colon, value = plain.partition(":")
    if not colon or len(key) > 30:
        return None
    name = " ".join(key.strip().lower().split())
    if name in _METADATA_KEYS and value.strip():
        return key.strip(), value.strip()
    return None


def _span(start: int, end: int) -> SourceSpan:
    return SourceSpan(start=start, end=max(start, end))


def statement(
    text: str,
    start: int,
    *,
    form: StatementForm,
    section: str = "",
    author_id: str | None = None,
    author_priority: str | None = None,
    kind: RequirementKind | None = None,
    criteria: Iterable[AcceptanceCriterion] = (),
) -> StatedRequirement | None:
    """One requirement as the author wrote it, or None when ``text`` states none.

    ``text`` is raw (Markdown allowed) and sits at character ``start`` of the card's body;
    the span is ``text`` with its outer whitespace trimmed (and a leading list marker left
    out). The requirement's ``text`` is plain: inline markup stripped, whitespace folded, a
    leading author id (``**FR-001**:``, ``FR1:``) taken as ``author_id`` when none is
    given, a trailing ``(Priority: P1)`` taken as the priority and dropped.

    ``form`` is how the caller found it (list item, table row, record, ...); a
    ``LIST_ITEM`` or ``MODAL`` that reads as a user story becomes ``USER_STORY`` and one
    that reads as EARS becomes ``EARS`` (table rows and records keep their form). A user
    story's parts are filled whatever the form. ``author_priority`` defaults to
    :func:`author_priority_of` of the text; ``kind`` to :func:`kind_of` (author id,
    ``section``, words).

    None when the plain text is empty or has no letter, is a metadata line
    (:func:`metadata_of`), or is only a question (:func:`is_question` without a
    ``[NEEDS CLARIFICATION]`` inside a statement: a requirement with such a marker keeps its
    text; its question comes from :func:`questions_in`)."""
    stripped = text.strip()
    if not stripped:
        return None
    offset = text.find(stripped[0])
    lead = _LIST_LEAD.match(stripped)
    if lead:
        offset += lead.end()
        stripped = stripped[lead.end() :]
    span = _span(start + offset, start + offset + len(stripped))
    plain = strip_inline(stripped)
    found_id, rest = author_id_of(plain)
    if found_id:
        plain = rest.strip()
        author_id = author_id or found_id
    if author_priority is None:
        author_priority = author_priority_of(plain)
    plain = without_priority_mark(plain)
    if not any(char.isalpha() for char in plain) or metadata_of(plain):
        return None
    if is_question(plain) and _CLARIFY.lower() not in plain.lower():
        return None
    story = user_story_of(plain)
    if form in (StatementForm.LIST_ITEM, StatementForm.MODAL):
        if story:
            form = StatementForm.USER_STORY
        elif is_ears(plain):
            form = StatementForm.EARS
    return StatedRequirement(
        text=plain,
        source_span=span,
        form=form,
        kind=kind or kind_of(plain, author_id=author_id, section=section),
        author_id=author_id,
        author_priority=author_priority,
        acceptance_criteria=list(criteria),
        user_story=story,
        section=section,
    )

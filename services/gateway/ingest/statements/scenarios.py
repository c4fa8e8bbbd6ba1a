"""Given/When/Then scenarios, and the list marker ("- ", "1. ", "- [ ] ") that they, like
every list item, may open with. Bounded patterns that stop at a character they cannot cross:
linear."""

from __future__ import annotations

import re
from collections.abc import Iterable

from contracts.backlog import AcceptanceCriterion
from services.gateway.ingest.inline import strip_inline

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

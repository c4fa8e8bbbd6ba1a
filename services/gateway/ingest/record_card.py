"""A tracker record (a CSV row, a JSON issue or card) as a final :class:`CardDraft`.

The card's body is the record's description; criteria given apart from it (a column, a
checklist) are appended under "Acceptance criteria:" and sub-records (Jira sub-tasks) under
"Sub-tasks:", so every span of the card's :class:`DocumentContext` points into its body. The
record itself is one :class:`StatedRequirement` (form ``record``) spanning the description (the
title when there is none); its group (epic, parent, list, milestone) is the heading path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from contracts.backlog import AcceptanceCriterion, RequirementKind, SourceSpan
from contracts.documents import (
    DocumentContext,
    StatedRequirement,
    StatementForm,
)
from services.gateway.ingest.criteria import criteria_section, parse_criteria, strip_marks
from services.gateway.ingest.model import (
    DERIVED_TITLE_CHARS,
    TITLE_MAX_CHARS,
    CardDraft,
    UploadError,
)
from services.gateway.ingest.normalise import clean_body, clean_title, derive_title, shorten
from services.gateway.ingest.statements.forms import user_story_of
from services.gateway.ingest.statements.kinds import kind_of
from services.gateway.ingest.statements.questions import questions_in


@dataclass(slots=True)
class Record:
    title: str
    description: str
    external_id: str | None = None
    priority: str | None = None
    record_type: str = ""
    criteria_lines: list[str] = field(default_factory=list)
    group: str = ""
    context: str = ""
    """The group's own description (an epic's), for prompts."""
    labels: list[str] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)
    children: list[Record] = field(default_factory=list)
    """Records that belong to this one (Jira sub-tasks): kept as requirements of its card."""
    where: str = ""


_NON_FUNCTIONAL = frozenset(
    {
        "nonfunctional",
        "nfr",
        "performance",
        "security",
        "reliability",
        "scalability",
        "usability",
        "accessibility",
        "availability",
        "quality",
    }
)
_CONSTRAINT = frozenset({"constraint", "compliance", "regulatory"})
_MOSCOW = ("must have", "should have", "could have", "won't have", "wont have")


def _word_key(text: str) -> str:
    return "".join(char for char in text.lower() if char.isalnum())


def record_kind(record: Record, author_id: str | None) -> RequirementKind:
    """Non-functional or constraint when the record's type or a label says so; else as the
    shared statement reader judges its title (by its id's prefix, then its words)."""
    keys = {_word_key(record.record_type), *(_word_key(label) for label in record.labels)}
    if keys & _CONSTRAINT:
        return RequirementKind.CONSTRAINT
    if keys & _NON_FUNCTIONAL:
        return RequirementKind.NON_FUNCTIONAL
    return kind_of(clean_title(record.title), author_id=author_id)


def label_priority(labels: list[str]) -> str | None:
    """A priority written as a label: "P1", "priority: high", "High priority", "Must have"."""
    for label in labels:
        text = clean_title(label)
        folded = text.lower()
        if len(folded) == 2 and folded[0] == "p" and folded[1] in "0123":
            return text.upper()
        for prefix in ("priority:", "priority/", "priority-", "priority "):
            if folded.startswith(prefix) and folded[len(prefix) :].strip():
                return text[len(prefix) :].strip()
        if folded.endswith(" priority") and len(folded) > len(" priority"):
            return text[: -len(" priority")].strip()
        if folded.replace("-", " ") in _MOSCOW:
            return text
    return None


def _title_and_lead(title: str, body: str) -> tuple[str, str]:
    """A title of at most TITLE_MAX_CHARS; a longer one is kept whole as the body's lead."""
    if len(title) <= TITLE_MAX_CHARS:
        return title, ""
    short = shorten(title, TITLE_MAX_CHARS)
    return short, "" if body.startswith(title) else title


def _append(body: str, heading: str, lines: list[str]) -> tuple[str, list[tuple[int, int]]]:
    """``body`` with a "heading:" section of bullets; the span of each bullet's text."""
    parts = [f"{body}\n\n{heading}:" if body else f"{heading}:"]
    offset = len(parts[0])
    spans: list[tuple[int, int]] = []
    for line in lines:
        parts.append(f"\n- {line}")
        offset += 3
        spans.append((offset, offset + len(line)))
        offset += len(line)
    return "".join(parts), spans


def record_draft(record: Record, *, file_name: str | None, max_chars: int) -> CardDraft | None:
    """The record's card, or None when it has neither a title nor a text; ``card_too_long``
    before any criterion is parsed when its text cannot fit ``max_chars``."""
    description = clean_body(record.description)
    title = clean_title(record.title)
    if not title and not description:
        return None
    _check_length(record, title, description, max_chars)
    if not title:
        title = derive_title(description, markdown=False) or shorten(
            clean_title(description), DERIVED_TITLE_CHARS
        )
    title, lead = _title_and_lead(title, description)
    body = f"{lead}\n\n{description}" if lead and description else (lead or description)
    has_text = bool(body)
    span = (0, len(body)) if has_text else (0, len(title))
    if not has_text:
        body = title

    criteria_lines = [strip_marks(line) for line in record.criteria_lines]
    criteria_lines = [line for line in criteria_lines if line]
    in_body = criteria_section(description) if not criteria_lines else []
    written = {strip_marks(line) for line in description.split("\n")} if criteria_lines else set()
    if criteria_lines and all(line in written for line in criteria_lines):
        in_body, criteria_lines = criteria_lines, []
    if criteria_lines:
        body, _ = _append(body, "Acceptance criteria", criteria_lines)
    criteria: list[AcceptanceCriterion] = parse_criteria(criteria_lines or in_body)

    requirements = [_requirement(record, _folded(body[span[0] : span[1]]), span, criteria, title)]
    child_drafts = [child for child in record.children if clean_title(child.title)]
    if child_drafts:
        lines = [_child_line(child) for child in child_drafts]
        body, spans = _append(body, "Sub-tasks", lines)
        for child, child_span in zip(child_drafts, spans, strict=True):
            child_criteria = parse_criteria(child.criteria_lines)
            text = body[child_span[0] : child_span[1]]
            requirements.append(_requirement(child, text, child_span, child_criteria, title))

    questions = questions_in(body[span[0] : span[1]], span[0]) if has_text else []
    document = DocumentContext(
        document=file_name,
        heading_path=[clean_title(record.group)] if clean_title(record.group) else [],
        metadata={key: value for key, value in record.metadata.items() if value},
        context=record.context,
        requirements=requirements,
        questions=questions,
    )
    external_id = clean_title(record.external_id) if record.external_id else None
    return CardDraft(title, body, external_id or None, 0, document, where=record.where)


def _check_length(record: Record, title: str, description: str, max_chars: int) -> None:
    """Refuse early what the dispatcher would refuse after parsing: the card's text at its
    least (whitespace folded) is already over the limit."""
    length = len(title) + len(description)
    extras = [*record.criteria_lines, *(c.title + c.description for c in record.children)]
    for line in extras:
        if length > max_chars:
            break
        length += len(" ".join(line.split()))
    if length > max_chars:
        raise UploadError(
            "card_too_long",
            f"The card at {record.where} ({shorten(title, 60)!r}) has more than {max_chars} "
            f"characters with its criteria and sub-tasks; the limit is {max_chars} per card. "
            "Split it.",
            limit=max_chars,
            card_title=title,
        )


def _folded(text: str) -> str:
    """Whitespace folded; the body is already clean (NFC, no control characters)."""
    return " ".join(text.split())


def _child_line(child: Record) -> str:
    name = clean_title(child.title)
    key = clean_title(child.external_id or "")
    line = f"{key}: {name}" if key else name
    # Its text folded onto its bullet: the parent's card loses nothing of it.
    description = _folded(clean_body(child.description))
    return f"{line} — {description}" if description else line


def _requirement(
    record: Record,
    text: str,
    span: tuple[int, int],
    criteria: list[AcceptanceCriterion],
    section: str,
) -> StatedRequirement:
    labels = record.labels
    author_id = clean_title(record.external_id or "") or None
    priority = clean_title(record.priority or "") or label_priority(labels)
    return StatedRequirement(
        text=text,
        user_story=user_story_of(text) or user_story_of(clean_title(record.title)),
        source_span=SourceSpan(start=span[0], end=span[1]),
        form=StatementForm.RECORD,
        kind=record_kind(record, author_id),
        author_id=author_id,
        author_priority=priority or None,
        acceptance_criteria=criteria,
        section=section,
    )

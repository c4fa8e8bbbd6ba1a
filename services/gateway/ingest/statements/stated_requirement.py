"""One requirement statement as the author wrote it (:func:`statement`), and the metadata
lines (``Version: 1.2``) that are never one."""

from __future__ import annotations

from collections.abc import Iterable

from contracts.backlog import AcceptanceCriterion, RequirementKind
from contracts.documents import StatedRequirement, StatementForm
from services.gateway.ingest.inline import strip_inline
from services.gateway.ingest.spans import span
from services.gateway.ingest.statements.author_ids import author_id_of
from services.gateway.ingest.statements.forms import is_ears, user_story_of
from services.gateway.ingest.statements.kinds import kind_of
from services.gateway.ingest.statements.priorities import author_priority_of, without_priority_mark
from services.gateway.ingest.statements.questions import CLARIFY_MARK, is_question
from services.gateway.ingest.statements.scenarios import list_marker_end

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
    lead = list_marker_end(stripped)
    offset += lead
    stripped = stripped[lead:]
    source_span = span(start + offset, start + offset + len(stripped))
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
    if is_question(plain) and CLARIFY_MARK.lower() not in plain.lower():
        return None
    story = user_story_of(plain)
    if form in (StatementForm.LIST_ITEM, StatementForm.MODAL):
        if story:
            form = StatementForm.USER_STORY
        elif is_ears(plain):
            form = StatementForm.EARS
    return StatedRequirement(
        text=plain,
        source_span=source_span,
        form=form,
        kind=kind or kind_of(plain, author_id=author_id, section=section),
        author_id=author_id,
        author_priority=author_priority,
        acceptance_criteria=list(criteria),
        user_story=story,
        section=section,
    )

"""Requirement statements as the author wrote them: shared by every reader (Markdown, text,
tracker rows), so one sentence is read the same wherever it comes from.

Everything here is pure and linear: the patterns are anchored, bounded or stop at a
character they cannot cross, and the rest is ``str.find``/``in`` over lower-cased text.

The main entry is :func:`statement` (:mod:`.stated_requirement`); the pieces it reads with
are public for readers that need one: author ids (:mod:`.author_ids`), priorities
(:mod:`.priorities`), questions (:mod:`.questions`), forms such as user stories and EARS
(:mod:`.forms`), kinds (:mod:`.kinds`), Given/When/Then scenarios and list markers
(:mod:`.scenarios`). This package re-exports them.
"""

from __future__ import annotations

from services.gateway.ingest.statements.author_ids import author_id_of, is_author_id
from services.gateway.ingest.statements.forms import (
    is_ears,
    is_requirement_sentence,
    user_story_of,
)
from services.gateway.ingest.statements.kinds import kind_of
from services.gateway.ingest.statements.priorities import (
    author_priority_of,
    modal_of,
    priority_value,
    without_priority_mark,
)
from services.gateway.ingest.statements.questions import is_question, questions_in
from services.gateway.ingest.statements.scenarios import (
    criteria_from_lines,
    is_scenario_line,
    list_marker_end,
)
from services.gateway.ingest.statements.stated_requirement import metadata_of, statement

__all__ = [
    "author_id_of",
    "author_priority_of",
    "criteria_from_lines",
    "is_author_id",
    "is_ears",
    "is_question",
    "is_requirement_sentence",
    "is_scenario_line",
    "kind_of",
    "list_marker_end",
    "metadata_of",
    "modal_of",
    "priority_value",
    "questions_in",
    "statement",
    "user_story_of",
    "without_priority_mark",
]

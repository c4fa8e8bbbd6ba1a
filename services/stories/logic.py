"""Pure logic of the stories stage: prompt inputs, the LLM's output model with the schema and
check that tie it to the epic's requirements, position-based story ids, the resulting
``Story`` list (every requirement cited: any an answer left out gets a story of its own), and
the offline draft (``drafting``)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from contracts.backlog import AcceptanceCriterion, Epic, Requirement, Story
from contracts.events import Stage, StoryInContext
from services.runtime.llm import LLMRequest
from services.runtime.prompts import PromptTemplate, fence, load_prompt
from services.runtime.text import shorten, stable_id
from services.stories import drafting
from services.stories.models import (
    MAX_CRITERIA,
    MAX_DRAFT_STORIES,
    MAX_LLM_STORIES,
    MAX_STORIES,
    DraftCriterion,
    DraftStory,
    Points,
    StoriesDraft,
)

__all__ = [
    "MAX_CRITERIA",
    "MAX_DRAFT_STORIES",
    "MAX_LLM_STORIES",
    "MAX_STORIES",
    "PROMPT",
    "DraftCriterion",
    "DraftStory",
    "Points",
    "StoriesDraft",
]

PROMPT: PromptTemplate = load_prompt(Path(__file__).parent / "prompts" / "stories.v2.md")
_SCHEMA: dict[str, Any] = StoriesDraft.model_json_schema()


def llm_stories(epic: Epic) -> int:
    """How many stories an LLM may write for ``epic``: room for one per requirement, within
    a readable answer."""
    return max(MAX_STORIES, min(MAX_LLM_STORIES, len(requirement_ids(epic))))


def requirement_ids(epic: Epic) -> list[str]:
    return list(dict.fromkeys(r.id for r in epic.requirements))


def json_schema(epic: Epic) -> dict[str, Any]:
    """The output schema with ``requirement_ids`` narrowed to this epic's ids, so a model
    that honours the schema cannot invent or misspell one, and with room for one story per
    requirement (``llm_stories``)."""
    schema = copy.deepcopy(_SCHEMA)
    schema["properties"]["stories"]["maxItems"] = llm_stories(epic)
    # What a model may write is tighter than what a draft may hold (an offline criterion
    # quotes the author's line whole): the output limit is sized to these bounds.
    story = schema["$defs"]["DraftStory"]["properties"]
    story["acceptance_criteria"]["maxItems"] = LLM_CRITERIA
    for name, chars in (("as_a", 60), ("i_want", 200), ("so_that", 200)):
        story[name]["maxLength"] = chars
    criterion = schema["$defs"]["DraftCriterion"]["properties"]
    for name, chars in (("given", 120), ("when", 120), ("then", 200), ("text", 300)):
        criterion[name]["maxLength"] = chars
    field = schema["$defs"]["DraftStory"]["properties"]["requirement_ids"]
    ids = requirement_ids(epic)
    if ids:
        field["items"] = {"type": "string", "enum": ids}
        field["minItems"] = 1
    else:
        # An empty enum is not a valid schema: with nothing to cite, cite nothing.
        field["maxItems"] = 0
    return schema


def validate(epic: Epic) -> Callable[[StoriesDraft], None]:
    """The check the schema cannot guarantee (providers need not enforce it): every story
    cites only this epic's requirements, at least one if it has any, and has a criterion
    with all three parts filled in. Messages name positions, never the answer's text."""
    known = set(requirement_ids(epic))

    def check(draft: StoriesDraft) -> None:
        for number, story in enumerate(draft.stories, start=1):
            unknown = [i for i in story.requirement_ids if i not in known]
            if unknown:
                raise ValueError(
                    f"story {number} cites {len(unknown)} requirement id(s) that are not this "
                    "epic's; use only the ids listed in [brackets]"
                )
            if known and not story.requirement_ids:
                raise ValueError(f"story {number} cites no requirement id")
            if not any(_filled(c) for c in story.acceptance_criteria):
                raise ValueError(f"story {number} has no acceptance criteria")
            placeholder = next(
                (
                    name
                    for name in ("title", "as_a", "i_want", "so_that")
                    if _is_placeholder(getattr(story, name))
                ),
                None,
            )
            if placeholder is not None:
                raise ValueError(
                    f"story {number}'s {placeholder} is a placeholder (a field's name), not "
                    "text; write what the story is about"
                )

    return check


_PLACEHOLDERS = frozenset(
    " ".join(name.split("_")) for name in (*DraftStory.model_fields, "story", "user_story")
) | {"goal", "epic", "summary", "description", "persona"}


def _is_placeholder(text: str) -> bool:
    """A value that is a field's own name ("Story", "as_a", "title"): what a small model
    writes when it echoes the schema instead of filling it in."""
    folded = " ".join(text.replace("_", " ").replace("-", " ").lower().split()).strip(" .:")
    return folded in _PLACEHOLDERS


def _filled(criterion: DraftCriterion) -> bool:
    return all(part.strip() for part in (criterion.given, criterion.when, criterion.then))


def messages(epic: Epic) -> list[dict[str, str]]:
    # The epic's title and goal were written from card text: untrusted as much as the cards.
    # One fence for all of it: ``fence`` escapes only its own closing tag, so text in a second
    # fence could otherwise close the first.
    lines = [f"Title: {epic.title}", f"Goal: {epic.goal}", "Requirements:"]
    lines += requirement_lines(epic.requirements) or ["(none listed)"]
    return PROMPT.render(
        priority=epic.priority.value,
        max_stories=str(llm_stories(epic)),
        epic=fence("epic", "\n".join(lines)),
    )


def requirement_lines(requirements: list[Requirement]) -> list[str]:
    """The requirements as the author wrote them, under their sections: the id to cite, the
    author's id, kind and priority, and the author's own criteria (to keep, not rewrite)."""
    lines: list[str] = []
    section = None
    for requirement in requirements:
        if requirement.section != section:
            section = requirement.section
            if section:
                lines.append(f"Section: {section}")
        facts = [
            fact
            for fact in (
                requirement.author_id,
                requirement.kind.value.replace("_", "-"),
                requirement.author_priority and f"priority {requirement.author_priority}",
            )
            if fact
        ]
        lines.append(f"- [{requirement.id}] ({'; '.join(facts)}) {requirement.text}")
        if requirement.acceptance_criteria:
            lines.append("  Author's acceptance criteria:")
            lines += [f"  * {_criterion_line(c)}" for c in requirement.acceptance_criteria]
    return lines


def _criterion_line(criterion: AcceptanceCriterion) -> str:
    if criterion.text.strip():
        return " ".join(criterion.text.split())
    parts = [
        f"{label} {part.strip()}"
        for label, part in (
            ("Given", criterion.given),
            ("when", criterion.when),
            ("then", criterion.then),
        )
        if part.strip()
    ]
    return ", ".join(parts)


def cache_input(epic: Epic) -> str:
    """What the answer depends on: the epic's text and its requirements as the prompt shows
    them, with their ids (the answer cites them), not the epic's own id: same text and ids,
    same answer."""
    return json.dumps(
        {
            "title": epic.title,
            "goal": epic.goal,
            "priority": epic.priority.value,
            "requirements": requirement_lines(epic.requirements),
        },
        sort_keys=True,
    )


def llm_request(epic: Epic) -> LLMRequest[StoriesDraft]:
    """The one call that writes an epic's stories (stage and benchmark alike)."""
    return LLMRequest(
        stage=Stage.STORIES.value,
        prompt_version=PROMPT.version,
        messages=messages(epic),
        output_model=StoriesDraft,
        offline=lambda: offline_draft(epic),
        cache_input=cache_input(epic),
        json_schema=json_schema(epic),
        validate=validate(epic),
        max_output_tokens=min(4000, 300 + STORY_OUTPUT_TOKENS * max(1, len(epic.requirements))),
    )


STORY_OUTPUT_TOKENS = 500
"""One story per requirement, near its schema's bounds (a title, as a / I want / so that, up
to ``LLM_CRITERIA`` criteria, sizes), with the JSON around them."""
LLM_CRITERIA = 5


def story_id(epic_id: str, index: int) -> str:
    """By position, not content: regenerating an epic's stories updates them in place."""
    return stable_id(epic_id, "story", str(index))


def to_stories(epic: Epic, draft: StoriesDraft) -> list[Story]:
    """The draft's stories, then one of the offline draft's for each requirement no story
    cites (an answer may leave some out: none is dropped silently)."""
    known = set(requirement_ids(epic))
    cited = {i for story in draft.stories for i in story.requirement_ids}
    missing = [r for r in epic.requirements if r.id not in cited]
    drafted = list(draft.stories)
    if missing:
        drafted += drafting.stories_for(epic, missing)
    return [_story(epic, story, index, known) for index, story in enumerate(drafted)]


def _story(epic: Epic, story: DraftStory, index: int, known: set[str]) -> Story:
    return Story(
        story_id=story_id(epic.epic_id, index),
        epic_id=epic.epic_id,
        title=shorten(story.title.strip(), 120),
        as_a=story.as_a.strip(),
        i_want=story.i_want.strip(),
        so_that=story.so_that.strip(),
        acceptance_criteria=[
            AcceptanceCriterion(
                given=c.given.strip(), when=c.when.strip(), then=c.then.strip(), text=c.text.strip()
            )
            for c in story.acceptance_criteria
            if _filled(c)
        ],
        priority=story.priority,
        estimate_points=story.estimate_points,
        # Belt and braces after ``validate``: no id outside the epic reaches the backlog.
        requirement_ids=[i for i in dict.fromkeys(story.requirement_ids) if i in known],
        order=index,
    )


def in_context(epic: Epic, story: Story) -> StoryInContext:
    """A story with what subtasks need to stay grounded: its epic and source requirements."""
    by_id = {r.id: r for r in epic.requirements}
    return StoryInContext(
        story=story,
        epic_title=epic.title,
        requirements=[by_id[i] for i in story.requirement_ids if i in by_id],
    )


# --- the offline draft --------------------------------------------------------------------


def offline_draft(epic: Epic) -> StoriesDraft:
    """Stories covering every requirement of ``epic`` from their own words (see
    ``drafting``), for running without an LLM."""
    return drafting.offline_draft(epic)

"""Pure logic of the stories stage: prompt inputs, the LLM's output model with the schema and
check that tie it to the epic's requirements, position-based story ids, the resulting
``Story`` list, and the offline draft."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from contracts.backlog import AcceptanceCriterion, Epic, Priority, Story
from contracts.events import StoryInContext
from services.runtime.prompts import PromptTemplate, fence, load_prompt
from services.runtime.text import shorten, stable_id

PROMPT: PromptTemplate = load_prompt(Path(__file__).parent / "prompts" / "stories.v1.md")
MAX_STORIES = 8
MAX_CRITERIA = 6
OFFLINE_MAX_STORIES = 6
Points = Literal[1, 2, 3, 5, 8, 13]


class DraftCriterion(BaseModel):
    given: str = Field(min_length=1)
    when: str = Field(min_length=1)
    then: str = Field(min_length=1)


class DraftStory(BaseModel):
    title: str = Field(min_length=1, max_length=120)
    as_a: str = Field(min_length=1, description='The persona, without "As a".')
    i_want: str = Field(min_length=1, description='What they want, without "I want".')
    so_that: str = Field(min_length=1, description='Why, without "so that".')
    acceptance_criteria: list[DraftCriterion] = Field(min_length=1, max_length=MAX_CRITERIA)
    priority: Priority
    estimate_points: Points
    requirement_ids: list[str] = Field(description="Ids of the epic's requirements it covers.")


class StoriesDraft(BaseModel):
    """What the LLM (or the offline provider) returns for one epic."""

    stories: list[DraftStory] = Field(min_length=1, max_length=MAX_STORIES)


_SCHEMA: dict[str, Any] = StoriesDraft.model_json_schema()


def requirement_ids(epic: Epic) -> list[str]:
    return list(dict.fromkeys(r.id for r in epic.requirements))


def json_schema(epic: Epic) -> dict[str, Any]:
    """The output schema with ``requirement_ids`` narrowed to this epic's ids, so a model
    that honours the schema cannot invent or misspell one."""
    schema = copy.deepcopy(_SCHEMA)
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

    return check


def _filled(criterion: DraftCriterion) -> bool:
    return all(part.strip() for part in (criterion.given, criterion.when, criterion.then))


def messages(epic: Epic) -> list[dict[str, str]]:
    # The epic's title and goal were written from card text: untrusted as much as the cards.
    # One fence for all of it: ``fence`` escapes only its own closing tag, so text in a second
    # fence could otherwise close the first.
    requirements = [f"- [{r.id}] {r.text}" for r in epic.requirements] or ["(none listed)"]
    lines = [f"Title: {epic.title}", f"Goal: {epic.goal}", "Requirements:", *requirements]
    return PROMPT.render(priority=epic.priority.value, epic=fence("epic", "\n".join(lines)))


def cache_input(epic: Epic) -> str:
    """What the answer depends on: the epic's text and its requirements with their ids (the
    answer cites them), not the epic's own id: same text and ids, same answer."""
    return json.dumps(
        {
            "title": epic.title,
            "goal": epic.goal,
            "priority": epic.priority.value,
            "requirements": [{"id": r.id, "text": r.text} for r in epic.requirements],
        },
        sort_keys=True,
    )


def story_id(epic_id: str, index: int) -> str:
    """By position, not content: regenerating an epic's stories updates them in place."""
    return stable_id(epic_id, "story", str(index))


def to_stories(epic: Epic, draft: StoriesDraft) -> list[Story]:
    known = set(requirement_ids(epic))
    return [
        Story(
            story_id=story_id(epic.epic_id, index),
            epic_id=epic.epic_id,
            title=story.title.strip(),
            as_a=story.as_a.strip(),
            i_want=story.i_want.strip(),
            so_that=story.so_that.strip(),
            acceptance_criteria=[
                AcceptanceCriterion(given=c.given.strip(), when=c.when.strip(), then=c.then.strip())
                for c in story.acceptance_criteria
                if _filled(c)
            ],
            priority=story.priority,
            estimate_points=story.estimate_points,
            # Belt and braces after ``validate``: no id outside the epic reaches the backlog.
            requirement_ids=[i for i in dict.fromkeys(story.requirement_ids) if i in known],
            order=index,
        )
        for index, story in enumerate(draft.stories)
    ]


def in_context(epic: Epic, story: Story) -> StoryInContext:
    """A story with what subtasks need to stay grounded: its epic and source requirements."""
    by_id = {r.id: r for r in epic.requirements}
    return StoryInContext(
        story=story,
        epic_title=epic.title,
        requirements=[by_id[i] for i in story.requirement_ids if i in by_id],
    )


# --- the offline draft: deterministic, from the requirements' own words --------------------

_AS_A = re.compile(
    r"\bas an? (?!result\b)([a-z][a-z \-]{1,30}?)\s*(?:,|\bi\b|\bwe\b|$)", re.IGNORECASE
)
_OPENING = re.compile(
    r"^\s*(?:as an? [^,]{1,40}?,?\s+)?(?:i|we)\s+(?:want|need|would like)\s+(?:to\s+)?",
    re.IGNORECASE,
)
_MODAL = re.compile(
    r"^(?P<subject>(?:[\w/'-]+\s+){0,4}?)"
    r"(?:must|should|shall|will|can|could|needs? to|has to|have to)\s+"
    r"(?:be able to\s+)?(?P<action>.+)$",
    re.IGNORECASE,
)
_SO_THAT = re.compile(r"[,;]?\s*\bso that\b\s*(?P<why>.+)$", re.IGNORECASE)
_LABEL = re.compile(r"^[A-Z][\w ]{0,20}:\s+")
# Subjects after which "I want to <action>" reads right; others become "I want <subject> to".
_SELF = {"i", "we", "user", "users", "the user", "the users", "a user", "you"}
_THIRD = {"i": "they", "me": "them", "my": "their", "mine": "theirs", "myself": "themselves"}
_THIRD_PERSON = re.compile(r"\bI\b(?![/'])|\b(?:[Mm]e|[Mm]y|[Mm]ine|[Mm]yself)\b")
# Words in the requirements → story points (beyond the last: 13).
_POINTS_BY_WORDS: tuple[tuple[int, Points], ...] = ((6, 1), (12, 2), (20, 3), (35, 5), (60, 8))
# Common verbs, so a bullet like "Export invoices to CSV" becomes "to export invoices to CSV".
_VERB_WORDS = """
    add allow approve archive assign book cancel change close compare configure create delete
    display download edit enable export filter find generate hide import invite keep list log
    manage mark merge move notify open pay print provide rate receive remember request reset
    restore review save schedule search see select send share show sign sort submit support
    sync track translate undo update upload validate view
"""
_VERBS = frozenset(_VERB_WORDS.split())


def offline_draft(epic: Epic) -> StoriesDraft:
    """One story per requirement (the last of ``OFFLINE_MAX_STORIES`` takes the rest), in
    As a / I want / so that form with Given/When/Then criteria, for running without an LLM."""
    requirements = list(epic.requirements)
    if not requirements:
        text = epic.goal or epic.title
        return StoriesDraft(stories=[_offline_story(epic, [text], [])])
    groups = [[r] for r in requirements[: OFFLINE_MAX_STORIES - 1]]
    if len(requirements) >= OFFLINE_MAX_STORIES:
        groups.append(requirements[OFFLINE_MAX_STORIES - 1 :])
    return StoriesDraft(
        stories=[
            _offline_story(epic, [r.text for r in group], [r.id for r in group]) for group in groups
        ]
    )


def _offline_story(epic: Epic, texts: list[str], ids: list[str]) -> DraftStory:
    persona = _persona(texts) or "user"
    wants = [_want(t) for t in texts]
    why = next((w for w in (_so_that(t) for t in texts) if w), None)
    title = _title(texts[0])
    if len(texts) > 1:
        title = shorten(title, 90) + f" (and {len(texts) - 1} more)"
    criteria = [_happy_path(persona, want, text) for want, text in zip(wants, texts, strict=True)]
    criteria = criteria[:MAX_CRITERIA]
    if len(criteria) < MAX_CRITERIA:
        criteria.append(_error_path(persona, wants[0]))
    return DraftStory(
        title=shorten(title, 120),
        as_a=persona,
        i_want=shorten("; ".join(wants), 300),
        so_that=shorten(why or _goal_clause(epic), 240),
        acceptance_criteria=criteria,
        priority=epic.priority,
        estimate_points=_points(texts),
        requirement_ids=ids,
    )


def _persona(texts: list[str]) -> str | None:
    for text in texts:
        match = _AS_A.search(text)
        if match:
            return match.group(1).strip().lower()
    return None


def _core(text: str) -> str:
    """The requirement without its persona opening, its "so that" clause and end stop."""
    core = _SO_THAT.sub("", " ".join(text.split()))
    core = _OPENING.sub("", core)
    return core.strip().rstrip(".!;,:")


def _want(text: str) -> str:
    """What goes after "I want": "to <action>" or "<subject> to <action>" when a modal verb
    says who acts, "to <verb> ..." for an imperative bullet, else the phrase as written."""
    core = _core(text)
    opening = _OPENING.match(_SO_THAT.sub("", " ".join(text.split())))
    if opening:
        # "I want to save my cart" → "to save my cart"; "I want the export to…" as written.
        return f"to {core}" if opening.group(0).rstrip().lower().endswith(" to") else core
    match = _MODAL.match(core)
    if match:
        subject = match.group("subject").strip()
        action = match.group("action").strip()
        if not subject or subject.lower() in _SELF:
            return f"to {action}"
        return f"{_lower_first(subject)} to {action}"
    first = core.split(" ", 1)[0].lower()
    if first in _VERBS:
        return f"to {_lower_first(core)}"
    return _lower_first(core) or "what this requirement asks for"


def _action(want: str) -> str:
    """The want as a verb phrase for "they ..." (first person turned into third)."""
    phrase = want[3:] if want.startswith("to ") else f"use {want}"
    return _THIRD_PERSON.sub(lambda m: _THIRD[m.group(0).lower()], phrase)


def _title(text: str) -> str:
    core = _core(text)
    match = _MODAL.match(core)
    phrase = match.group("action") if match else core
    return _upper_first(shorten(phrase, 110)) or "Story"


def _so_that(text: str) -> str | None:
    match = _SO_THAT.search(" ".join(text.split()))
    return match.group("why").strip().rstrip(".!") if match else None


def _goal_clause(epic: Epic) -> str:
    goal = _LABEL.sub("", " ".join(epic.goal.split())).rstrip(".!")
    return _lower_first(goal) or f"“{epic.title}” is delivered"


def _happy_path(persona: str, want: str, text: str) -> DraftCriterion:
    return DraftCriterion(
        given=f"{_a(persona)} who needs this",
        when=f"they {shorten(_action(want), 200)}",
        then=f"the outcome matches the requirement: {shorten(text, 240)}",
    )


def _error_path(persona: str, want: str) -> DraftCriterion:
    return DraftCriterion(
        given="the input it needs is missing or invalid",
        when=f"{_a(persona)} tries to {shorten(_action(want), 200)}",
        then="they see a clear message saying what to fix, and nothing is changed",
    )


def _points(texts: list[str]) -> Points:
    """Bigger requirements (or more of them) take more effort."""
    words = sum(len(t.split()) for t in texts)
    return next((points for limit, points in _POINTS_BY_WORDS if words <= limit), 13)


def _a(noun: str) -> str:
    # By sound, roughly: "an admin", "an editor", but "a user", "a unit manager".
    return f"an {noun}" if re.match(r"(?:[aeio]|u(?!s|ni))", noun, re.IGNORECASE) else f"a {noun}"


def _lower_first(text: str) -> str:
    # Leave acronyms and names alone: "CSV export" stays, "Export invoices" → "export invoices".
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        return text[0].lower() + text[1:]
    return text


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]

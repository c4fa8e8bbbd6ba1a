"""Pure logic of the subtasks stage: prompt inputs, the LLM's output model with the schema and
check that hold it to the run's options, position-based subtask ids, the resulting
``Subtask`` list with dependencies on siblings, and the offline draft."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from contracts.backlog import Story, Subtask, SubtaskKind
from contracts.events import Stage, StoryInContext, SubtaskOptions
from services.runtime.llm import LLMRequest
from services.runtime.prompts import PromptTemplate, fence, load_prompt
from services.runtime.text import shorten, stable_id
from services.subtasks import planning

PROMPT: PromptTemplate = load_prompt(Path(__file__).parent / "prompts" / "subtasks.v2.md")
MAX_SUBTASKS = 20  # SubtaskOptions.max_per_story's own ceiling
DESCRIPTION_CHARS = 1000
MIN_HOURS = 0.5
MAX_HOURS = 40.0


class DraftSubtask(BaseModel):
    title: str = Field(min_length=1, max_length=120)
    description: str = Field(min_length=1, max_length=DESCRIPTION_CHARS)
    kind: SubtaskKind
    estimate_hours: float = Field(ge=MIN_HOURS, le=MAX_HOURS)
    depends_on: list[int] = Field(
        description="Positions (from 0) of earlier subtasks in this list that come first."
    )


class SubtasksDraft(BaseModel):
    """What the LLM (or the offline provider) returns for one story."""

    subtasks: list[DraftSubtask] = Field(min_length=1, max_length=MAX_SUBTASKS)


_SCHEMA: dict[str, Any] = SubtasksDraft.model_json_schema()


def bounds(options: SubtaskOptions) -> tuple[int, int]:
    """(fewest, most) subtasks per story. The options do not forbid min > max; read
    reversed bounds as the range they span rather than as an impossible request."""
    low, high = sorted((options.min_per_story, options.max_per_story))
    return low, high


def allowed_kinds(options: SubtaskOptions) -> list[SubtaskKind]:
    return [
        kind
        for kind in SubtaskKind
        if (kind is not SubtaskKind.TEST or options.include_tests)
        and (kind is not SubtaskKind.DOCS or options.include_docs)
    ]


def json_schema(options: SubtaskOptions) -> dict[str, Any]:
    """The output schema narrowed to the options: how many subtasks, and which kinds."""
    low, high = bounds(options)
    schema = copy.deepcopy(_SCHEMA)
    schema["properties"]["subtasks"].update(minItems=low, maxItems=high)
    properties = schema["$defs"]["DraftSubtask"]["properties"]
    properties["kind"] = {
        "type": "string",
        "enum": [k.value for k in allowed_kinds(options)],
        "title": "Kind",
    }
    properties["depends_on"]["items"] = {"type": "integer", "minimum": 0}
    # What a model may write is tighter than what a draft may hold (an offline description
    # quotes the story): the output limit is sized to these bounds.
    properties["description"]["maxLength"] = LLM_DESCRIPTION_CHARS
    schema["$defs"].pop("SubtaskKind", None)  # no longer referenced
    return schema


LLM_DESCRIPTION_CHARS = 300


def validate(options: SubtaskOptions) -> Callable[[SubtasksDraft], None]:
    """The options as a check on the answer (providers need not enforce the schema), and
    dependencies only on earlier subtasks, so the order is always a valid plan and no cycle
    can exist. Messages name positions and rules, never the answer's text."""
    low, high = bounds(options)
    allowed = set(allowed_kinds(options))

    def check(draft: SubtasksDraft) -> None:
        count = len(draft.subtasks)
        if not low <= count <= high:
            raise ValueError(f"{count} subtasks given; write between {low} and {high}")
        for index, subtask in enumerate(draft.subtasks):
            if subtask.kind not in allowed:
                raise ValueError(
                    f"subtask {index} is of kind {subtask.kind.value}, which the settings "
                    f"exclude (allowed: {', '.join(k.value for k in SubtaskKind if k in allowed)})"
                )
            if any(not 0 <= d < index for d in subtask.depends_on):
                raise ValueError(
                    f"subtask {index} depends on a position that is not an earlier subtask "
                    "(depends_on names earlier positions only, counting from 0)"
                )

    return check


def options_text(options: SubtaskOptions) -> str:
    """The options spelled out for the prompt (trusted: they come from the run, not a card)."""
    low, high = bounds(options)
    count = f"exactly {low}" if low == high else f"between {low} and {high}"
    tests = (
        'Include test subtasks (kind "test") for the acceptance criteria.'
        if options.include_tests
        else 'Write no test subtasks: kind "test" is not allowed.'
    )
    docs = (
        'Include a documentation subtask (kind "docs") where users or developers need one.'
        if options.include_docs
        else 'Write no documentation subtasks: kind "docs" is not allowed.'
    )
    return f"- Write {count} subtasks.\n- {tests}\n- {docs}"


def messages(story_in_context: StoryInContext, options: SubtaskOptions) -> list[dict[str, str]]:
    # Every story field was written from card text: untrusted as much as the cards. One
    # fence for all of it: ``fence`` escapes only its own closing tag.
    story = story_in_context.story
    lines = [
        f"Epic: {story_in_context.epic_title}",
        f"Story: {story.title}",
        f"As a {story.as_a}, I want {story.i_want}, so that {story.so_that}.",
        f"Priority: {story.priority.value}; estimate: {story.estimate_points} points",
        "Acceptance criteria:",
        *(
            f"{n}. Given {c.given}, when {c.when}, then {c.then}"
            + (f" (the author's words: {c.text})" if c.text else "")
            for n, c in enumerate(story.acceptance_criteria, start=1)
        ),
    ]
    requirements = [
        f"- [{r.id}] " + (f"({r.author_id}) " if r.author_id else "") + r.text
        for r in story_in_context.requirements
    ]
    lines += ["Source requirements:", *(requirements or ["(none listed)"])]
    return PROMPT.render(options=options_text(options), story=fence("story", "\n".join(lines)))


def cache_input(story_in_context: StoryInContext, options: SubtaskOptions) -> str:
    """What the answer depends on: the story's text, its requirements and the options; not
    the story's id (same text and options, same answer: ids are given afterwards)."""
    story = story_in_context.story.model_dump(mode="json", exclude={"story_id", "epic_id", "order"})
    return json.dumps(
        {
            "story": story,
            "epic_title": story_in_context.epic_title,
            "requirements": [r.text for r in story_in_context.requirements],
            "options": options.model_dump(mode="json"),
        },
        sort_keys=True,
    )


def llm_request(
    story_in_context: StoryInContext, options: SubtaskOptions
) -> LLMRequest[SubtasksDraft]:
    """The one call that plans a story's subtasks (stage and benchmark alike)."""
    return LLMRequest(
        stage=Stage.SUBTASKS.value,
        prompt_version=PROMPT.version,
        messages=messages(story_in_context, options),
        output_model=SubtasksDraft,
        offline=lambda: offline_draft(story_in_context, options),
        cache_input=cache_input(story_in_context, options),
        json_schema=json_schema(options),
        validate=validate(options),
        max_output_tokens=200 + SUBTASK_OUTPUT_TOKENS * bounds(options)[1],
    )


SUBTASK_OUTPUT_TOKENS = 160
"""One subtask at its schema's bounds: a title (120 characters), a description (300), a kind,
hours and dependencies, with the JSON around them."""


def subtask_id(story_id: str, index: int) -> str:
    """By position, not content: regenerating a story's subtasks updates them in place."""
    return stable_id(story_id, "subtask", str(index))


def to_subtasks(story: Story, draft: SubtasksDraft) -> list[Subtask]:
    ids = [subtask_id(story.story_id, index) for index in range(len(draft.subtasks))]
    return [
        Subtask(
            subtask_id=ids[index],
            story_id=story.story_id,
            title=subtask.title.strip(),
            description=subtask.description.strip(),
            kind=subtask.kind,
            estimate_hours=subtask.estimate_hours,
            order=index,
            # Only earlier siblings (``validate`` rejects the rest; this keeps a draft that
            # skipped it acyclic too), each once, in list order.
            depends_on=[ids[d] for d in sorted(set(subtask.depends_on)) if 0 <= d < index],
        )
        for index, subtask in enumerate(draft.subtasks)
    ]


# --- the offline draft: deterministic, from the story's own words -------------------------


def offline_draft(story_in_context: StoryInContext, options: SubtaskOptions) -> SubtasksDraft:
    """The work the story needs (``planning.plan``), fitted to the options' range: tests
    collapse into one, dev work merges, then docs and tests fold into the dev work (fewer
    subtasks, not less work); too few get review passes and a release; for running without
    an LLM."""
    story = story_in_context.story
    low, high = bounds(options)
    work = _fewer(planning.plan(story_in_context, options), high, story.title)
    subtasks = [_draft(item, work[:index]) for index, item in enumerate(work)]
    title = shorten(story.title, 90)
    missing = low - len(subtasks)
    for round_ in range(1, missing):
        subtasks.append(_review(title, round_, len(subtasks)))
    if missing > 0:
        subtasks.append(_release(title, len(subtasks)))
    return SubtasksDraft(subtasks=subtasks)


_LATE = ("test", "docs")


def _fewer(work: list[planning.Work], most: int, title: str) -> list[planning.Work]:
    tests = [w for w in work if w.area == "test"]
    if len(work) > most and len(tests) > 1:
        # One subtask tests every criterion.
        joined = planning.Work(
            "test",
            shorten(f"Test: the {len(tests)} acceptance criteria of {title}", 120),
            "\n".join(t.description for t in tests),
            SubtaskKind.TEST,
            planning.clamp(sum(t.hours for t in tests)),
            after=tests[0].after,
        )
        work = [w for w in work if w.area != "test"] + [joined]
        work = _docs_last(work)
    # Then docs fold into the dev work, dev work merges, and the tests fold in last: keeping
    # the kinds of dev work apart says more about the story than a separate docs subtask.
    work = _fold(work, "docs", most)
    while len(work) > most and sum(w.area not in _LATE for w in work) > 1:
        devs = [i for i, w in enumerate(work) if w.area not in _LATE]
        first, second = devs[-2], devs[-1]
        work[first] = planning.merged(work[first], work[second])
        del work[second]
    work = _fold(work, "test", most)
    return work


def _fold(work: list[planning.Work], area: str, most: int) -> list[planning.Work]:
    """Past ``most``, the ``area`` subtasks become part of the first dev subtask."""
    while len(work) > most and any(w.area == area for w in work):
        at = next(i for i, w in enumerate(work) if w.area == area)
        folded = work.pop(at)
        work[0] = replace(
            work[0],
            description=f"{work[0].description}\nAlso: {folded.description}",
            hours=planning.clamp(work[0].hours + folded.hours),
        )
    return work


def _docs_last(work: list[planning.Work]) -> list[planning.Work]:
    return [w for w in work if w.area != "docs"] + [w for w in work if w.area == "docs"]


def _draft(item: planning.Work, before: list[planning.Work]) -> DraftSubtask:
    return DraftSubtask(
        title=item.title,
        description=shorten(item.description, DESCRIPTION_CHARS),
        kind=item.kind,
        estimate_hours=planning.clamp(item.hours),
        depends_on=[i for i, earlier in enumerate(before) if earlier.area in item.after],
    )


def _review(title: str, round_: int, count: int) -> DraftSubtask:
    suffix = "" if round_ == 1 else f" (round {round_})"
    return DraftSubtask(
        title=f"Review and refine: {title}{suffix}",
        description="Review the work so far against the acceptance criteria and fix what "
        "falls short.",
        kind=SubtaskKind.DEV,
        estimate_hours=2.0,
        depends_on=list(range(count)),
    )


def _release(title: str, count: int) -> DraftSubtask:
    return DraftSubtask(
        title=f"Release: {title}",
        description="Deploy the change, check it works in production, and watch for errors.",
        kind=SubtaskKind.OPS,
        estimate_hours=1.0,
        depends_on=list(range(count)),
    )

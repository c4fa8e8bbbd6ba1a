"""Pure logic of the epics stage: the requirements an epic covers (grouped by the document's
structure: ``grouping``), prompt inputs, the LLM's output model, the offline draft, and the
resulting ``Epic``."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, Field

from contracts.backlog import CardAnalysis, Epic, Priority, Requirement
from contracts.events import Stage
from services.epics.grouping import CardInScope, Grouping, group_requirements
from services.runtime.llm import LLMRequest
from services.runtime.prompts import PromptTemplate, fence, load_prompt
from services.runtime.text import shorten

PROMPT: PromptTemplate = load_prompt(Path(__file__).parent / "prompts" / "epic.v2.md")
GOAL_REQUIREMENTS = 3
"""Requirements an offline goal names before "and N more"."""

__all__ = ["AnalysedCard", "EpicDraft", "Grouping", "group", "in_scope", "to_epic"]


@dataclass(frozen=True, slots=True)
class AnalysedCard:
    card_id: str
    title: str
    analysis: CardAnalysis
    position: int


class EpicDraft(BaseModel):
    title: str = Field(min_length=1, max_length=120)
    goal: str = Field(min_length=1, max_length=800)
    priority: Priority


def in_scope(cards: Iterable[AnalysedCard]) -> list[CardInScope]:
    return [CardInScope(c.card_id, c.title, c.position, c.analysis) for c in cards]


def group(project_id: str, cards: list[AnalysedCard]) -> list[Grouping]:
    """The epics the scope's requirements make, by the document's structure, in order."""
    return group_requirements(project_id, in_scope(cards))


def covered(cards: Iterable[AnalysedCard], requirement_ids: Iterable[str]) -> list[Requirement]:
    """The requirements of ``cards`` an epic covers, in the order of ``requirement_ids``."""
    by_id = {r.id: r for card in cards for r in card.analysis.requirements}
    return [by_id[i] for i in requirement_ids if i in by_id]


def messages(title: str, requirements: list[Requirement]) -> list[dict[str, str]]:
    # The working title is a heading of the document: untrusted like the requirements, so it
    # sits in the same fence.
    lines = [f"Working title: {title}", "Requirements:"]
    lines += [f"- [{r.id}] {r.text}" for r in requirements]
    return PROMPT.render(requirements=fence("requirements", "\n".join(lines)))


def cache_input(title: str, requirements: list[Requirement]) -> str:
    return json.dumps(
        {
            "title": title,
            "requirements": [
                {"text": r.text, "priority": r.author_priority, "kind": r.kind.value}
                for r in requirements
            ],
        },
        sort_keys=True,
    )


def llm_request(
    title: str, cards: list[AnalysedCard], requirements: list[Requirement]
) -> LLMRequest[EpicDraft]:
    """The one call that writes an epic over ``requirements`` (stage and benchmark alike)."""
    return LLMRequest(
        stage=Stage.EPICS.value,
        prompt_version=PROMPT.version,
        messages=messages(title, requirements),
        output_model=EpicDraft,
        offline=lambda: offline_draft(title, cards, requirements),
        cache_input=cache_input(title, requirements),
        max_output_tokens=EPIC_OUTPUT_TOKENS,
    )


EPIC_OUTPUT_TOKENS = 400
"""A title, a goal of a few sentences and a priority."""


def to_epic(
    project_id: str,
    epic_id: str,
    order: int,
    cards: list[AnalysedCard],
    requirements: list[Requirement],
    draft: EpicDraft,
) -> Epic:
    covering = {r.id for r in requirements}
    card_ids = [
        c.card_id
        for c in sorted(cards, key=lambda c: c.position)
        if any(r.id in covering for r in c.analysis.requirements)
    ]
    return Epic(
        epic_id=epic_id,
        project_id=project_id,
        title=draft.title.strip(),
        goal=draft.goal.strip(),
        priority=draft.priority,
        order=order,
        requirement_ids=[r.id for r in requirements],
        card_ids=card_ids,
        requirements=requirements,
    )


def offline_draft(
    title: str, cards: list[AnalysedCard], requirements: list[Requirement]
) -> EpicDraft:
    """A draft from the document's own words, for running without an LLM: the heading it
    groups under as the title, what it covers as the goal."""
    named = [shorten(r.text.rstrip("."), 90) for r in requirements[:GOAL_REQUIREMENTS]]
    goal = f"Deliver {title}: " + "; ".join(named)
    if len(requirements) > GOAL_REQUIREMENTS:
        goal += f"; and {len(requirements) - GOAL_REQUIREMENTS} more"
    return EpicDraft(
        title=shorten(title, 120), goal=goal + ".", priority=_priority(cards, requirements)
    )


def _priority(cards: list[AnalysedCard], requirements: list[Requirement]) -> Priority:
    """The highest priority the author gave a covered requirement, else its cards'."""
    known = [r.priority for r in requirements if r.priority is not None]
    if known:
        return min(known)
    covering = {r.id for r in requirements}
    priorities = [
        c.analysis.priority for c in cards if any(r.id in covering for r in c.analysis.requirements)
    ]
    return min(priorities) if priorities else Priority.P2

"""Pure logic of the epics stage: grouping analysed cards into epics (deterministic, so an
epic's id is stable across reruns), prompt inputs, the LLM's output model, the offline
draft, and the resulting ``Epic``."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, Field

from contracts.backlog import CardAnalysis, Epic, Priority, Requirement
from services.runtime.keywords import jaccard, keywords, top_keywords
from services.runtime.prompts import PromptTemplate, fence, load_prompt
from services.runtime.text import shorten, stable_id

PROMPT: PromptTemplate = load_prompt(Path(__file__).parent / "prompts" / "epic.v1.md")
CARDS_PER_EPIC = 2.5
MAX_EPICS = 12


@dataclass(frozen=True, slots=True)
class AnalysedCard:
    card_id: str
    title: str
    analysis: CardAnalysis
    position: int


@dataclass(frozen=True, slots=True)
class Group:
    """The cards one epic will cover; its id follows from them."""

    epic_id: str
    card_ids: tuple[str, ...]
    provisional_title: str


class EpicDraft(BaseModel):
    title: str = Field(min_length=1, max_length=120)
    goal: str = Field(min_length=1)
    priority: Priority


def epic_id(project_id: str, card_ids: tuple[str, ...]) -> str:
    return stable_id(project_id, "epic", *sorted(card_ids))


def _card_words(card: AnalysedCard) -> set[str]:
    texts = [card.title, card.analysis.summary, *(r.text for r in card.analysis.requirements)]
    return set(keywords(" ".join(texts)))


def group_cards(project_id: str, cards: list[AnalysedCard]) -> list[Group]:
    """Agglomerative grouping by shared keywords, about ``CARDS_PER_EPIC`` cards an epic.

    Deterministic: the same analysed cards always give the same groups in the same order
    (by the position of each group's first card), so reruns update epics in place.
    """
    ordered = sorted(cards, key=lambda c: (c.position, c.card_id))
    if not ordered:
        return []
    target = max(1, min(MAX_EPICS, math.ceil(len(ordered) / CARDS_PER_EPIC)))
    clusters: list[list[AnalysedCard]] = [[c] for c in ordered]
    words = [_card_words(c) for c in ordered]
    cluster_words: list[set[str]] = [set(w) for w in words]
    while len(clusters) > target:
        best: tuple[float, int, int] | None = None
        for i in range(len(clusters)):
            for j in range(i + 1, len(clusters)):
                # Prefer similar groups; among equals, keep groups small and the order stable.
                score = jaccard(cluster_words[i], cluster_words[j]) - 0.01 * (
                    len(clusters[i]) + len(clusters[j])
                )
                if best is None or score > best[0]:
                    best = (score, i, j)
        assert best is not None
        _, i, j = best
        clusters[i] = clusters[i] + clusters[j]
        cluster_words[i] = cluster_words[i] | cluster_words[j]
        del clusters[j], cluster_words[j]
    groups = []
    for cluster in sorted(clusters, key=lambda cl: min(c.position for c in cl)):
        card_ids = tuple(c.card_id for c in sorted(cluster, key=lambda c: c.position))
        groups.append(Group(epic_id(project_id, card_ids), card_ids, provisional_title(cluster)))
    return groups


def provisional_title(cluster: list[AnalysedCard]) -> str:
    if len(cluster) == 1:
        return shorten(cluster[0].title, 80)
    words = top_keywords([c.title for c in cluster] + [c.analysis.summary for c in cluster], 3)
    return " ".join(w.capitalize() for w in words) or shorten(cluster[0].title, 80)


def requirements_of(cards: list[AnalysedCard]) -> list[Requirement]:
    return [r for c in cards for r in c.analysis.requirements]


def messages(cards: list[AnalysedCard]) -> list[dict[str, str]]:
    lines = []
    for card in cards:
        lines.append(f"Card: {card.title}\nSummary: {card.analysis.summary}")
        lines += [f"- [{r.id}] {r.text}" for r in card.analysis.requirements]
    return PROMPT.render(requirements=fence("requirements", "\n".join(lines)))


def cache_input(cards: list[AnalysedCard]) -> str:
    return json.dumps(
        [c.analysis.model_dump(mode="json") | {"title": c.title} for c in cards], sort_keys=True
    )


def to_epic(
    project_id: str, group: Group, order: int, cards: list[AnalysedCard], draft: EpicDraft
) -> Epic:
    requirements = requirements_of(cards)
    return Epic(
        epic_id=group.epic_id,
        project_id=project_id,
        title=draft.title.strip(),
        goal=draft.goal.strip(),
        priority=draft.priority,
        order=order,
        requirement_ids=[r.id for r in requirements],
        card_ids=list(group.card_ids),
        requirements=requirements,
    )


def offline_draft(group: Group, cards: list[AnalysedCard]) -> EpicDraft:
    """A draft from the cards' own words, for running without an LLM."""
    priorities = sorted(c.analysis.priority for c in cards)
    summaries = [c.analysis.summary.rstrip(".") for c in cards]
    goal = "Deliver: " + "; ".join(shorten(s, 120) for s in summaries[:3])
    if len(summaries) > 3:
        goal += f"; and {len(summaries) - 3} more"
    return EpicDraft(
        title=group.provisional_title,
        goal=goal + ".",
        priority=priorities[0] if priorities else Priority.P2,
    )

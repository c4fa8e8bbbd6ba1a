"""Pure logic of the analysis stage: prompt inputs, the LLM's output model, turning it into
a ``CardAnalysis`` with stable requirement ids and source spans, and the offline draft."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, Field

from contracts.backlog import CardAnalysis, CardKind, Priority, Requirement, SourceSpan
from services.runtime.prompts import PromptTemplate, fence, load_prompt
from services.runtime.text import (
    Segment,
    best_segment,
    content_hash,
    has_any,
    locate,
    segments,
    shorten,
)

PROMPT: PromptTemplate = load_prompt(Path(__file__).parent / "prompts" / "analysis.v1.md")
MAX_REQUIREMENTS = 15


@dataclass(frozen=True, slots=True)
class Card:
    card_id: str
    project_id: str
    title: str
    body: str
    position: int = 0


class DraftRequirement(BaseModel):
    text: str = Field(min_length=1)
    quote: str = Field(default="", description="Copied verbatim from the card body.")


class AnalysisDraft(BaseModel):
    """What the LLM (or the offline provider) returns for one card."""

    summary: str = Field(min_length=1)
    kind: CardKind
    personas: list[str] = Field(min_length=1)
    requirements: list[DraftRequirement] = Field(min_length=1, max_length=MAX_REQUIREMENTS)
    priority: Priority
    open_questions: list[str]


def messages(card: Card) -> list[dict[str, str]]:
    return PROMPT.render(
        card_title=fence("card_title", card.title), card_body=fence("card_body", card.body)
    )


def cache_input(card: Card) -> str:
    """What the result depends on: the card's text (not its id: same text, same answer)."""
    return json.dumps({"title": card.title, "body": card.body}, sort_keys=True)


def requirement_id(card_id: str, index: int) -> str:
    return f"{card_id}:R{index + 1}"


def to_analysis(card: Card, draft: AnalysisDraft) -> CardAnalysis:
    """The draft with stable requirement ids and spans pointing into the card's body."""
    requirements = []
    for index, requirement in enumerate(draft.requirements):
        span = locate(requirement.quote, card.body) or locate(requirement.text, card.body)
        start, end = span or best_segment(requirement.quote or requirement.text, card.body)
        requirements.append(
            Requirement(
                id=requirement_id(card.card_id, index),
                text=requirement.text.strip(),
                source_span=SourceSpan(start=start, end=end),
            )
        )
    return CardAnalysis(
        card_id=card.card_id,
        summary=draft.summary.strip(),
        kind=draft.kind,
        personas=_unique(p.strip() for p in draft.personas if p.strip()) or ["user"],
        requirements=requirements,
        priority=draft.priority,
        open_questions=[q.strip() for q in draft.open_questions if q.strip()],
    )


def analysis_version(analysis: CardAnalysis) -> str:
    return content_hash(analysis.model_dump_json())[:16]


# --- the offline draft: deterministic, from the text itself ------------------------------

_REQUIREMENT_WORDS = (
    "must",
    "should",
    "shall",
    "need",
    "needs",
    "want",
    "wants",
    "will",
    "allow",
    "allows",
    "support",
    "supports",
    "able to",
    "can ",
    "enable",
    "provide",
    "require",
    "let ",
    "lets ",
)
_BUG = ("bug", "error", "crash", "broken", "fails", "failure", "fix", "regression", "wrong")
_IMPROVEMENT = ("improve", "faster", "better", "optimi", "refactor", "speed up", "simplif")
_RESEARCH = ("investigate", "spike", "research", "explore", "evaluate", "prototype")
_CHORE = ("upgrade", "migrate", "cleanup", "clean up", "chore", "bump", "rename")
_P1 = (
    "must",
    "critical",
    "urgent",
    "blocker",
    "security",
    "asap",
    "required",
    "legal",
    "compliance",
    "gdpr",
)
_P3 = ("nice to have", "could", "maybe", "later", "optional", "someday", "if time")
_PERSONAS = (
    "user",
    "admin",
    "administrator",
    "customer",
    "manager",
    "developer",
    "operator",
    "guest",
    "editor",
    "owner",
    "shopper",
    "buyer",
    "seller",
    "support agent",
    "team lead",
    "analyst",
    "visitor",
    "member",
    "author",
    "reviewer",
)
_AS_A = re.compile(r"\bas an? ([a-z][a-z \-]{1,30}?)(?:,|\bi\b|\bwe\b|$)", re.IGNORECASE)


def offline_draft(card: Card) -> AnalysisDraft:
    """A draft built only from the card's text, for running without an LLM."""
    text = f"{card.title}\n{card.body}"
    parts = segments(card.body) or [Segment(card.title, 0, 0, False)]
    wanted = [s for s in parts if s.bullet or has_any(s.text, _REQUIREMENT_WORDS)]
    chosen = (wanted or parts)[:MAX_REQUIREMENTS]
    requirements = [
        DraftRequirement(text=shorten(s.text, 300), quote=s.text)
        for s in chosen
        if not s.text.endswith("?")
    ] or [DraftRequirement(text=shorten(chosen[0].text, 300), quote=chosen[0].text)]
    questions = [
        s.text for s in parts if s.text.endswith("?") or has_any(s.text, ("tbd", "tbc", "unclear"))
    ]
    return AnalysisDraft(
        summary=shorten(_first_sentence(card), 240),
        kind=_kind(text),
        personas=_personas(text),
        requirements=requirements,
        priority=Priority.P1
        if has_any(text, _P1)
        else Priority.P3
        if has_any(text, _P3)
        else Priority.P2,
        open_questions=questions[:5],
    )


def _first_sentence(card: Card) -> str:
    for segment in segments(card.body):
        if not segment.bullet:
            return segment.text
    return card.title


def _kind(text: str) -> CardKind:
    if has_any(text, _BUG):
        return CardKind.BUG
    if has_any(text, _RESEARCH):
        return CardKind.RESEARCH
    if has_any(text, _CHORE):
        return CardKind.CHORE
    if has_any(text, _IMPROVEMENT):
        return CardKind.IMPROVEMENT
    return CardKind.FEATURE


def _personas(text: str) -> list[str]:
    found = [m.group(1).strip().lower() for m in _AS_A.finditer(text)]
    lowered = text.lower()
    found += [p for p in _PERSONAS if re.search(rf"\b{p}s?\b", lowered)]
    return _unique(found)[:4] or ["user"]


def _unique(items: object) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:  # type: ignore[attr-defined]
        seen.setdefault(str(item), None)
    return list(seen)

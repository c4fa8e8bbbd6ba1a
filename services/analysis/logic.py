"""Pure logic of the analysis stage: prompt inputs, the LLM's output model, turning it into
a ``CardAnalysis`` with stable requirement ids and source spans, and the offline draft.

The document reader (the gateway's ``ingest``) has already found the requirements the author
wrote, with their ids, priorities, criteria and spans (``Card.document``). They are kept as
written, every one of them: the LLM (or the offline provider) adds a summary, the kind,
personas, a priority, open questions, and only the requirements the reader did not find, each
each placed in the card's text (the passage it quotes, else the one most like it
where the model is the card's only reader).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field

from contracts.backlog import (
    CardAnalysis,
    CardKind,
    OpenQuestion,
    Priority,
    Requirement,
    RequirementKind,
    SourceSpan,
)
from contracts.documents import DocumentContext, StatedRequirement
from contracts.events import Stage
from services.runtime.llm import LLMRequest
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

PROMPT: PromptTemplate = load_prompt(Path(__file__).parent / "prompts" / "analysis.v2.md")
PROMPT_TERMS = 40
"""Glossary entries given to the prompt (the most a card's context needs)."""
PROMPT_CONTEXT_CHARS = 1500


@dataclass(frozen=True, slots=True)
class Card:
    card_id: str
    project_id: str
    title: str
    body: str
    position: int = 0
    document: DocumentContext | None = None

    @property
    def stated(self) -> list[StatedRequirement]:
        """The requirements the document reader found, as the author wrote them."""
        return list(self.document.requirements) if self.document is not None else []


class DraftRequirement(BaseModel):
    text: str = Field(min_length=1, max_length=600)
    quote: str = Field(
        default="", max_length=1000, description="Copied verbatim from the card body."
    )
    kind: RequirementKind = RequirementKind.FUNCTIONAL


class AnalysisDraft(BaseModel):
    """What the LLM (or the offline provider) returns for one card."""

    # Bounds on free text and lists are part of the schema a server turns into a grammar, so
    # a small model that repeats itself stops at them instead of at the output limit.
    summary: str = Field(min_length=1, max_length=600)
    kind: CardKind
    personas: list[Annotated[str, Field(max_length=80)]] = Field(min_length=1, max_length=12)
    requirements: list[DraftRequirement] = Field(
        description="Requirements of the card not already found by the document reader."
    )
    priority: Priority
    open_questions: list[Annotated[str, Field(max_length=400)]] = Field(max_length=40)


_SCHEMA: dict[str, Any] = AnalysisDraft.model_json_schema()


def stated_line(number: int, stated: StatedRequirement) -> str:
    author = f" ({stated.author_id})" if stated.author_id else ""
    return f"- [R{number}]{author} {stated.text}"


def messages(card: Card, part: tuple[int, int] | None = None) -> list[dict[str, str]]:
    """The prompt for ``card``; ``part`` (number, of) when its body is one part of a card
    too long for the model's context."""
    # Everything here comes from the document: one fence for all of it (``fence`` escapes
    # only closing tags, so text in a second fence could otherwise close the first).
    lines = [f"Title: {card.title}"]
    if part is not None and part[1] > 1:
        lines.append(f"Part {part[0]} of {part[1]} of the card (each part is analysed alone)")
    document = card.document
    if document is not None and document.heading_path:
        lines.append("Place in document: " + " > ".join(document.heading_path))
    if document is not None and document.terms:
        lines.append("Glossary:")
        lines += [
            f"- {t.term}: {shorten(t.definition, 200)}" for t in document.terms[:PROMPT_TERMS]
        ]
    if document is not None and document.context:
        lines.append("Document context: " + shorten(document.context, PROMPT_CONTEXT_CHARS))
    if card.stated:
        lines.append("Requirements found:")
        lines += [stated_line(n, stated) for n, stated in enumerate(card.stated, start=1)]
    lines += ["Body:", card.body]
    return PROMPT.render(card=fence("card", "\n".join(lines)))


def cache_input(card: Card) -> str:
    """What the result depends on: the card's text and what the reader found in it (not its
    id: same text, same answer)."""
    document = card.document.model_dump(mode="json") if card.document is not None else None
    return json.dumps(
        {"title": card.title, "body": card.body, "document": document}, sort_keys=True
    )


def validate(card: Card) -> Callable[[AnalysisDraft], None]:
    """The check a schema cannot make: a card whose reader found nothing gets at least one
    requirement from the model (a whole card: one part of a long card may be all context).
    Quotes are not checked here: a small model rarely copies verbatim, and a re-ask for every
    paraphrase doubles the calls; ``to_analysis`` places each requirement instead. Messages
    name positions, never the answer's text."""

    def check(draft: AnalysisDraft) -> None:
        if not card.stated and not draft.requirements:
            raise ValueError("no requirement given; list what the card asks for")

    return check


def llm_request(card: Card, part: tuple[int, int] | None = None) -> LLMRequest[AnalysisDraft]:
    """The call that analyses ``card``, or one part (number, of) of a card too long for the
    model's context (``parts.split``), whose body is then that part."""
    whole = part is None or part[1] == 1
    return LLMRequest(
        stage=Stage.ANALYSIS.value,
        prompt_version=PROMPT.version,
        messages=messages(card, part),
        output_model=AnalysisDraft,
        offline=lambda: offline_draft(card),
        cache_input=cache_input(card),
        validate=validate(card) if whole else None,
        max_output_tokens=output_budget_for(card),
        json_schema=json_schema(card),
    )


def json_schema(card: Card) -> dict[str, Any]:
    """The output schema with room for as many further requirements, questions and personas
    as the card has sentences and bullets (the offline draft never needs more), so a model
    that keeps listing stops where the card's text does."""
    schema = copy.deepcopy(_SCHEMA)
    room = max(1, len(segments(card.body)))
    schema["properties"]["requirements"]["maxItems"] = room
    schema["properties"]["open_questions"]["maxItems"] = min(room, 40)
    schema["properties"]["personas"]["maxItems"] = min(room + 1, 12)
    return schema


def output_budget_for(card: Card, body_chars: int | None = None) -> int:
    """What the answer needs: the requirements quote the card's text (about its length in
    tokens, with the JSON around each), plus the summary; a model repeating itself stops at
    this, not at the context's end. ``body_chars``: for a body that long instead of the
    card's own."""
    chars = len(card.title) + (len(card.body) if body_chars is None else body_chars)
    return min(4000, max(1024, 400 + chars * 3 // 8))


def requirement_id(card_id: str, index: int) -> str:
    return f"{card_id}:R{index + 1}"


def to_analysis(card: Card, draft: AnalysisDraft) -> CardAnalysis:
    """The author's requirements as written, then the draft's new ones (spans checked to point
    into the card's body; one that restates a found requirement is dropped), with stable ids."""
    requirements = [
        _from_stated(requirement_id(card.card_id, index), stated)
        for index, stated in enumerate(card.stated)
    ]
    # Only the author's spans are taken: the model may draw two requirements from one
    # sentence, but never restate one the author wrote.
    taken = [(r.source_span.start, r.source_span.end) for r in requirements]
    known_texts = {_fold(r.text) for r in requirements}
    for drafted in draft.requirements:
        span = locate(drafted.quote, card.body) or locate(drafted.text, card.body)
        if span is None and not card.stated:
            # The model is the card's only reader: its requirement is kept, traced to the
            # passage most like it. Beside the author's own list, a guess with no place in
            # the text is not added.
            span = best_segment(drafted.quote or drafted.text, card.body)
        if span is None or _overlaps(span, taken) or _fold(drafted.text) in known_texts:
            continue
        known_texts.add(_fold(drafted.text))
        requirements.append(
            Requirement(
                id=requirement_id(card.card_id, len(requirements)),
                text=drafted.text.strip(),
                source_span=SourceSpan(start=span[0], end=span[1]),
                kind=drafted.kind,
            )
        )
    questions = _questions(card, draft)
    return CardAnalysis(
        card_id=card.card_id,
        summary=draft.summary.strip(),
        kind=draft.kind,
        personas=_unique(p.strip() for p in draft.personas if p.strip()) or ["user"],
        requirements=requirements,
        priority=_author_priority(card.stated) or draft.priority,
        open_questions=[q.text for q in questions],
        questions=questions,
        heading_path=list(card.document.heading_path) if card.document is not None else [],
    )


def _from_stated(requirement_id_: str, stated: StatedRequirement) -> Requirement:
    return Requirement(
        id=requirement_id_,
        text=stated.text,
        source_span=stated.source_span,
        author_id=stated.author_id,
        kind=stated.kind,
        author_priority=stated.author_priority,
        priority=priority_of(stated.author_priority) if stated.author_priority else None,
        acceptance_criteria=list(stated.acceptance_criteria),
        section=stated.section,
    )


def _questions(card: Card, draft: AnalysisDraft) -> list[OpenQuestion]:
    found = list(card.document.questions) if card.document is not None else []
    seen = {_fold(q.text) for q in found}
    for text in draft.open_questions:
        text = text.strip()
        if not text or _fold(text) in seen:
            continue
        seen.add(_fold(text))
        span = locate(text, card.body)
        found.append(
            OpenQuestion(
                text=text,
                source_span=SourceSpan(start=span[0], end=span[1]) if span else None,
            )
        )
    return found


def _overlaps(span: tuple[int, int], taken: list[tuple[int, int]]) -> bool:
    return any(span[0] < end and start < span[1] for start, end in taken)


def _fold(text: str) -> str:
    return " ".join(text.lower().split()).rstrip(".")


_PRIORITY_WORDS: tuple[tuple[Priority, tuple[str, ...]], ...] = (
    (Priority.P1, ("p0", "p1", "must", "must have", "must-have", "critical", "high", "shall")),
    (Priority.P2, ("p2", "should", "should have", "should-have", "medium", "normal")),
    (Priority.P3, ("p3", "p4", "may", "could", "could have", "won't", "wont", "low", "optional")),
)


def priority_of(author_priority: str) -> Priority | None:
    """The backlog's priority for a priority as the author wrote it (P0-P3, RFC 2119, MoSCoW,
    High/Medium/Low); None when it reads as none of them."""
    folded = " ".join(author_priority.lower().replace("-", " ").split())
    for priority, words in _PRIORITY_WORDS:
        if any(folded == w or folded.startswith(w + " ") for w in words):
            return priority
    return None


def _author_priority(stated: list[StatedRequirement]) -> Priority | None:
    """The highest priority the author gave any requirement of the card."""
    found = [priority_of(s.author_priority) for s in stated if s.author_priority]
    known = [p for p in found if p is not None]
    return min(known) if known else None


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
    """A draft built only from the card's text, for running without an LLM: when the reader
    found the author's requirements they are the card's requirements (the draft adds none);
    otherwise each bullet or sentence that asks for something, every one of them."""
    text = f"{card.title}\n{card.body}"
    parts = segments(card.body) or [Segment(card.title, 0, 0, False)]
    questions = [shorten(s.text, 400) for s in parts if _is_question(s.text)][:40]
    requirements: list[DraftRequirement] = []
    if not card.stated:
        asks = [s for s in parts if not _is_question(s.text)]
        wanted = [s for s in asks if s.bullet or has_any(s.text, _REQUIREMENT_WORDS)]
        chosen = wanted or asks or parts[:1]
        requirements = [
            DraftRequirement(text=shorten(s.text, 300), quote=s.text[:1000]) for s in chosen
        ]
    personas = _personas(text) + [
        s.user_story.as_a.lower() for s in card.stated if s.user_story is not None
    ]
    return AnalysisDraft(
        summary=shorten(_first_sentence(card), 240),
        kind=_kind(text),
        personas=_unique(personas)[:4] or ["user"],
        requirements=requirements,
        priority=Priority.P1
        if has_any(text, _P1)
        else Priority.P3
        if has_any(text, _P3)
        else Priority.P2,
        open_questions=questions,
    )


def _is_question(text: str) -> bool:
    return text.rstrip().endswith("?") or has_any(text, ("tbd", "tbc", "unclear"))


def _first_sentence(card: Card) -> str:
    if card.stated:
        return f"{card.title}: {card.stated[0].text}"
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


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(str(item) for item in items))

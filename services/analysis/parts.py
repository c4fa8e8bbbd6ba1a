"""A card too long for the model's context, split into parts that fit, and the parts'
answers joined into one draft.

Pure: the splitter sees the context size as a number and measures prompts the way the LLM
client does (``estimate_tokens``), so its parts pass the client's own check before sending. A part
is a run of whole sentences and bullets (a sentence longer than a part is cut between words),
with the requirements the reader found in it; the document's place, glossary and context go
with every part, since each is read alone.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from contracts.backlog import Priority
from contracts.documents import DocumentContext, StatedRequirement
from services.analysis.logic import (
    AnalysisDraft,
    Card,
    messages,
    output_budget_for,
    stated_line,
)
from services.runtime.llm.request import estimate_prompt_tokens, estimate_tokens
from services.runtime.text import segments

MIN_PART_CHARS = 200
"""A part shorter than this is not worth a call: the card's own context is what overflows."""
_MAX_PERSONAS = 12
_MAX_QUESTIONS = 40


@dataclass(frozen=True, slots=True)
class Part:
    """One call's share of a card: ``card`` holds the slice as its body."""

    card: Card
    number: int
    of: int


def fits(card: Card, context: int) -> bool:
    """Whether the whole card's prompt and the answer it may need fit the context."""
    return estimate_prompt_tokens(messages(card)) + output_budget_for(card) <= context


def split(card: Card, context: int | None) -> list[Part]:
    """The card as one part when it fits (or nothing is known of the context), else parts in
    body order that together hold every character of the body. When even a short part cannot
    fit beside the card's title, place and glossary, the card stays whole: the client then
    refuses it as ``llm_context_overflow`` before sending."""
    if context is None or fits(card, context):
        return [Part(card, 1, 1)]
    # The fixed lines of every part's prompt, with the widest "Part n of m" line there is.
    shell = replace(card, body="", document=_only(card, []))
    base = estimate_prompt_tokens(messages(shell, (len(card.body), len(card.body))))
    longest = _longest_body(card, context - base)
    if longest < MIN_PART_CHARS:
        return [Part(card, 1, 1)]
    pieces = _pieces(card, context - base, longest)
    by_piece: list[list[StatedRequirement]] = [[] for _ in pieces]
    for stated, owner in zip(
        card.stated, _owners(card.stated, [a for a, _ in pieces]), strict=True
    ):
        by_piece[owner].append(stated)

    widest = len(card.stated)
    # A piece's prompt tokens: its slice of the body and the lines of the requirements found
    # in it (estimated piece by piece, which never counts less than the whole would).
    costs = [
        estimate_tokens(card.body[start:end])
        + sum(estimate_tokens(stated_line(widest, s) + "\n") for s in mine)
        for (start, end), mine in zip(pieces, by_piece, strict=True)
    ]

    def tile(most_chars: int) -> list[tuple[int, int, list[StatedRequirement]]]:
        """Pieces joined in order while the part fits the context and ``most_chars``."""
        spans: list[tuple[int, int, list[StatedRequirement]]] = []
        tokens = 0  # the last span's prompt tokens beyond ``base``
        for (start, end), mine, cost in zip(pieces, by_piece, costs, strict=True):
            if spans:
                first, _, stated = spans[-1]
                chars = end - first
                answer = output_budget_for(card, chars)
                if chars <= most_chars and base + tokens + cost + answer <= context:
                    stated.extend(mine)
                    spans[-1] = (first, end, stated)
                    tokens += cost
                    continue
            spans.append((start, end, list(mine)))
            tokens = cost
        return spans

    spans = tile(len(card.body))
    # As many parts, of about equal length: they are asked at once, so the longest sets the
    # time. The narrowest cap that still tiles into as many parts is taken.
    even = -(-len(card.body) // len(spans))
    for cap in range(even, longest, max(1, longest // 100)):
        tiled = tile(cap)
        if len(tiled) == len(spans):
            spans = tiled
            break
    return [
        Part(
            replace(card, body=card.body[start:end], document=_only(card, stated)),
            number,
            len(spans),
        )
        for number, (start, end, stated) in enumerate(spans, start=1)
    ]


def merge(drafts: Sequence[AnalysisDraft]) -> AnalysisDraft:
    """One draft of the whole card: the first part's summary and kind (where the card says
    what it is about), every part's requirements in body order, the highest priority, and
    personas and questions once each."""
    if len(drafts) == 1:
        return drafts[0]
    first = drafts[0]
    return AnalysisDraft(
        summary=first.summary,
        kind=first.kind,
        personas=_unique([p for d in drafts for p in d.personas])[:_MAX_PERSONAS],
        requirements=[r for d in drafts for r in d.requirements],
        priority=min((d.priority for d in drafts), key=_rank),
        open_questions=_unique([q for d in drafts for q in d.open_questions])[:_MAX_QUESTIONS],
    )


def _rank(priority: Priority) -> int:
    return list(Priority).index(priority)


def _unique(items: list[str]) -> list[str]:
    seen: dict[str, str] = {}
    for item in items:
        seen.setdefault(" ".join(item.lower().split()), item)
    return list(seen.values())


def _only(card: Card, stated: list[StatedRequirement]) -> DocumentContext | None:
    document = card.document
    return None if document is None else document.model_copy(update={"requirements": stated})


def _longest_body(card: Card, room: int) -> int:
    """The longest slice of body (in characters) whose tokens, at the body's own density,
    and answer fit ``room``: where an over-long sentence is cut."""
    size = max(1, len(card.body))
    density = estimate_tokens(card.body) / size
    low, high = 0, len(card.body)
    while low < high:
        middle = (low + high + 1) // 2
        if math.ceil(middle * density) + output_budget_for(card, middle) <= room:
            low = middle
        else:
            high = middle - 1
    return low


def _pieces(card: Card, room: int, longest: int) -> list[tuple[int, int]]:
    """Spans that tile the body, each from the start of a sentence or bullet to the start of
    the next (headings and blank lines between go with the one before); one whose tokens and
    answer do not fit ``room`` is cut between words where they do."""
    body = card.body

    def fits(start: int, end: int) -> bool:
        return estimate_tokens(body[start:end]) + output_budget_for(card, end - start) <= room

    starts = [0] + [s.start for s in segments(body) if s.start > 0]
    out: list[tuple[int, int]] = []
    for start, end in itertools.pairwise([*starts, len(body)]):
        while not fits(start, end):
            # The longest slice from ``start`` that fits (at least one character, so the
            # loop ends), then back to the last space in it.
            low, high = start + 1, min(end, start + longest) - 1
            while low < high:
                middle = (low + high + 1) // 2
                low, high = (middle, high) if fits(start, middle) else (low, middle - 1)
            space = body.rfind(" ", start + 1, low + 1)
            cut = space if space > start else low
            out.append((start, cut))
            start = cut
        if end > start:
            out.append((start, end))
    return out


def _owners(stated: list[StatedRequirement], starts: list[int]) -> list[int]:
    """The piece each requirement the reader found begins in."""
    return [max(0, bisect.bisect_right(starts, s.source_span.start) - 1) for s in stated]

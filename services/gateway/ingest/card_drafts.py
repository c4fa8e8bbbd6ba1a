"""Gathered cards out as :class:`CardDraft`: each card's body from its sections' text (in
parts when over the card limit), every requirement's and question's span moved from the
document into that body, the document's context attached."""

from __future__ import annotations

from collections.abc import Iterator

from contracts.backlog import OpenQuestion, SourceSpan
from contracts.documents import DocumentContext, StatedRequirement
from services.gateway.ingest.gathered import CONTEXT_MAX_CHARS, GatheredCard, GatheredDocument
from services.gateway.ingest.model import (
    DERIVED_TITLE_CHARS,
    TITLE_MAX_CHARS,
    CardDraft,
    UploadError,
    UploadLimits,
)
from services.gateway.ingest.normalise import shorten


def card_drafts(
    cards: list[GatheredCard], document: GatheredDocument, limits: UploadLimits
) -> Iterator[CardDraft]:
    context = " ".join(document.context)
    for card in cards:
        if not card.title:
            first = card.requirements[0].text if card.requirements else ""
            card.title = shorten(first, DERIVED_TITLE_CHARS).rstrip(".:") or "Card"
        for part, (body, requirements, questions) in enumerate(_bodies(card, document, limits)):
            title = card.title if part == 0 else f"{card.title} (part {part + 1})"
            notes = " ".join(card.notes)
            yield CardDraft(
                title=shorten(title, TITLE_MAX_CHARS) or "Card",
                body=body,
                external_id=None,
                position=0,
                document=DocumentContext(
                    document=document.file_name,
                    heading_path=card.path,
                    metadata=document.metadata,
                    terms=document.terms,
                    context=shorten(" ".join(p for p in (notes, context) if p), CONTEXT_MAX_CHARS),
                    requirements=requirements,
                    questions=questions,
                ),
            )


def _bodies(
    card: GatheredCard, document: GatheredDocument, limits: UploadLimits
) -> Iterator[tuple[str, list[StatedRequirement], list[OpenQuestion]]]:
    """The card's body from its sections' text (one card, or parts when over the card limit),
    with every span moved from the document into the body."""
    budget = max(limits.max_card_chars - len(card.title) - 20, 1000)
    pieces = list(_pieces(card, document.text, budget, limits))
    body = ""
    moves: list[tuple[int, int, int]] = []  # (doc start, doc end, body start)
    for start, end in pieces:
        chunk = document.text[start:end].rstrip()
        if not chunk.strip():
            continue
        if body and len(body) + 2 + len(chunk) > budget:
            yield _moved(body, moves, card)
            body, moves = "", []
        if body:
            body += "\n\n"
        moves.append((start, start + len(chunk), len(body)))
        body += chunk
    if body:
        yield _moved(body, moves, card)


def _pieces(
    card: GatheredCard, text: str, budget: int, limits: UploadLimits
) -> Iterator[tuple[int, int]]:
    """The document ranges of the card's sections, each cut before the block that would take
    it past ``budget``; a single block longer than that is refused."""
    for section in card.sections:
        start, end = section.start, section.end
        if end - start <= budget:
            yield start, end
            continue
        cut = start
        for block in section.blocks:
            if block.end - block.start > budget:
                line = text.count("\n", 0, block.start) + 1
                raise UploadError(
                    "card_too_long",
                    f"The text at line {line} (under {card.title or 'the first heading'!r}) "
                    f"is one block of {block.end - block.start} characters; the limit is "
                    f"{limits.max_card_chars} per card. Split it into paragraphs.",
                    limit=limits.max_card_chars,
                    line=line,
                    card_title=card.title,
                    length=block.end - block.start,
                )
            if block.end - cut > budget and block.start > cut:
                yield cut, block.start
                cut = block.start
        yield cut, end


def _moved(
    body: str, moves: list[tuple[int, int, int]], card: GatheredCard
) -> tuple[str, list[StatedRequirement], list[OpenQuestion]]:
    def place(span: SourceSpan) -> SourceSpan | None:
        for doc_start, doc_end, body_start in moves:
            if doc_start <= span.start and span.end <= doc_end:
                shift = body_start - doc_start
                return SourceSpan(start=span.start + shift, end=span.end + shift)
        return None

    requirements = []
    for requirement in card.requirements:
        span = place(requirement.source_span)
        if span is not None:
            requirements.append(requirement.model_copy(update={"source_span": span}))
    questions = []
    for question in card.questions:
        span = place(question.source_span) if question.source_span is not None else None
        if span is not None:
            questions.append(question.model_copy(update={"source_span": span}))
    return body, requirements, questions

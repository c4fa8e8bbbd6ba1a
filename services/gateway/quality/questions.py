"""The open questions of the analysed cards, for the report and ``GET .../questions``."""

from __future__ import annotations

from collections.abc import Iterable

from services.gateway.quality.shape import AnalysedCard, QuestionOut


def open_questions(cards: Iterable[AnalysedCard]) -> list[QuestionOut]:
    """Each card's open questions, with their spans where the analysis gives them."""
    out: list[QuestionOut] = []
    for card in cards:
        analysis = card.analysis
        spanned = {q.text: q.source_span for q in analysis.questions}
        texts = [q.text for q in analysis.questions]
        texts += [t for t in analysis.open_questions if t not in spanned]
        for text in dict.fromkeys(texts):
            out.append(
                QuestionOut(
                    card_id=card.card_id,
                    card_title=card.title,
                    text=text,
                    source_span=spanned.get(text),
                )
            )
    return out

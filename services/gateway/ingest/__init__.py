"""Documents into cards: the readers of uploaded files (DESIGN.md, gateway ingest/).

:func:`split_upload` is the one entry for ``POST /v1/projects/{id}/uploads``: bytes in, every
card out in order, or an :class:`UploadError` (problem+json). All or nothing: the route stores
and publishes only what a whole file gave. (Cards sent as JSON to ``/cards`` are not read
here: the analysis stage reads their text alone.)

Format by extension, else by content type (:func:`model.detect_format`); bytes to text by
:mod:`decoding`; Markdown and plain text by :mod:`document` (markdown-it-py, block rules
only: linear on any input); CSV/TSV by :mod:`tabular` (Jira exports too); JSON by
:mod:`records` (GitHub issues, Trello boards, plain card lists).
"""

from __future__ import annotations

from services.gateway.ingest.decoding import decode
from services.gateway.ingest.document import read_document
from services.gateway.ingest.model import (
    EXTERNAL_ID_MAX_CHARS,
    CardDraft,
    UploadError,
    UploadFormat,
    UploadLimits,
    check_file_size,
    detect_format,
)
from services.gateway.ingest.normalise import clean_title, shorten
from services.gateway.ingest.records import read_json
from services.gateway.ingest.tabular import read_csv

__all__ = [
    "CardDraft",
    "UploadError",
    "UploadFormat",
    "UploadLimits",
    "check_file_size",
    "detect_format",
    "split_upload",
]


def split_upload(
    file_name: str | None,
    content_type: str | None,
    data: bytes,
    limits: UploadLimits | None = None,
) -> list[CardDraft]:
    """Every card of the file, in order, or an :class:`UploadError`."""
    limits = limits or UploadLimits()
    check_file_size(len(data), limits)
    fmt = detect_format(file_name, content_type)
    text = decode(data, fmt)
    if fmt is UploadFormat.CSV:
        drafts = read_csv(text, file_name=file_name, limits=limits)
    elif fmt is UploadFormat.JSON:
        drafts = read_json(text, file_name=file_name, limits=limits)
    else:
        markdown = fmt is UploadFormat.MARKDOWN
        drafts = read_document(text, file_name=file_name, limits=limits, markdown=markdown)
    return finish(drafts, limits)


def finish(drafts: list[CardDraft], limits: UploadLimits) -> list[CardDraft]:
    """The checks every reader shares: unique external ids, the card limits, positions."""
    cards: list[CardDraft] = []
    seen_ids: dict[str, str] = {}
    for draft in drafts:
        where = draft.where or f"card {len(cards) + 1}"
        external_id = clean_title(draft.external_id) if draft.external_id else None
        if external_id is not None:
            if len(external_id) > EXTERNAL_ID_MAX_CHARS:
                raise UploadError(
                    "input_invalid",
                    f"The external id of the card at {where} is longer than "
                    f"{EXTERNAL_ID_MAX_CHARS} characters.",
                )
            if external_id in seen_ids:
                raise UploadError(
                    "input_invalid",
                    f"External id {external_id!r} is used twice ({seen_ids[external_id]} and "
                    f"{where}); ids must be unique within an upload.",
                )
            seen_ids[external_id] = where
        position = len(cards)
        if position >= limits.max_cards:
            raise UploadError(
                "too_many_cards",
                f"The file has more than {limits.max_cards} cards, the limit per upload; "
                "split it into several uploads.",
                limit=limits.max_cards,
            )
        length = len(draft.title) + len(draft.body)
        if length > limits.max_card_chars:
            raise UploadError(
                "card_too_long",
                f"Card {position + 1} ({where}, {shorten(draft.title, 60)!r}) has {length} "
                f"characters; the limit is {limits.max_card_chars} per card. Split it.",
                limit=limits.max_card_chars,
                position=position,
                card_title=draft.title,
                length=length,
            )
        cards.append(
            CardDraft(draft.title, draft.body, external_id, position, draft.document, where)
        )
    if not cards:
        raise UploadError(
            "no_cards",
            "The file holds no cards: it is empty, only blank, or only headings.",
        )
    return cards

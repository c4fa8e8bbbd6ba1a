"""A span of a card's body as the readers give it: never reversed."""

from __future__ import annotations

from contracts.backlog import SourceSpan


def span(start: int, end: int) -> SourceSpan:
    return SourceSpan(start=start, end=max(start, end))

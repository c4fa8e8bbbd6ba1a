"""Numbers as the text exports write them: ``8``, ``2.5``, ``42.0 %``."""

from __future__ import annotations


def figure(value: float) -> str:
    return f"{value:g}"


def percent(share: float | None) -> str:
    return "unknown" if share is None else f"{100 * share:.1f} %"

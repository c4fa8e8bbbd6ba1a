"""Pure: the live view of a run as text to write, redrawn in place on a terminal or a line
per change when piped (so a log of ``cardflow run`` reads as the run's story). What the view
shows is :mod:`progress_view`; this decides when and how it reaches the screen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from services.gateway.client.progress_view import (
    format_cost,
    format_count,
    format_duration,
    is_finished,
    one_line,
    render_progress,
    stage_counts,
    stage_summary,
    total_tokens,
)


def use_live_view(isatty: bool, term: str | None) -> bool:
    """Redraw in place only on a real terminal that understands cursor movement."""
    return isatty and (term or "").lower() not in ("dumb", "")


def redraw(previous_lines: int, lines: Sequence[str]) -> str:
    """ANSI text that replaces the ``previous_lines`` lines just printed by ``lines``:
    cursor up, back to column 0, erase to the end of the screen, print."""
    move = f"\x1b[{previous_lines}A\r\x1b[J" if previous_lines else ""
    return move + "".join(line + "\n" for line in lines)


def progress_line(run: Mapping[str, Any]) -> str:
    """The one-line form of the view, for logs and pipes."""
    status = str(run.get("status") or "unknown")
    finished = is_finished(run)
    stages = "; ".join(
        f"{name} {stage_summary(counts, finished=finished)}" for name, counts in stage_counts(run)
    )
    text = f"[{format_duration(run.get('elapsed_seconds'))}] {status}: {stages}"
    if not finished:
        eta = run.get("eta_seconds")
        text += f" | ETA {'unknown' if eta is None else format_duration(eta)}"
    usage = run.get("usage") or {}
    return (
        text + f" | {format_count(total_tokens(run))} tokens, {format_cost(usage.get('cost_usd'))}"
    )


def _progress_key(run: Mapping[str, Any]) -> tuple[Any, ...]:
    """What makes a new line worth printing when piped: status and counts, not the clock."""
    finished = is_finished(run)
    return (
        run.get("status"),
        tuple((n, stage_summary(c, finished=finished)) for n, c in stage_counts(run)),
    )


def _error_key(error: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(str(error.get(k) or "") for k in ("stage", "item_id", "code", "message"))


def error_line(error: Mapping[str, Any]) -> str:
    stage = f"{error['stage']} " if error.get("stage") else ""
    text = f"  error: {stage}{error.get('item_id') or '?'}: {error.get('code') or 'error'}"
    message = one_line(error.get("message") or "")
    return text + (f": {message}" if message else "")


@dataclass
class ProgressPrinter:
    """Turns successive snapshots of a run into text to write. Live: the whole view, redrawn
    over the previous one. Not live: a line when status or counts change, and each error the
    first time it is seen, so piped output is a readable log of the run."""

    live: bool
    width: int = 80
    drawn: int = 0
    last_key: tuple[Any, ...] | None = None
    errors_seen: set[tuple[str, ...]] = field(default_factory=set)

    def update(self, run: Mapping[str, Any], *, extra_elapsed: float = 0.0) -> str:
        if self.live:
            shown = dict(run)
            if extra_elapsed and not is_finished(run):
                # No change since the last answer: the clock still moves on screen.
                shown["elapsed_seconds"] = float(run.get("elapsed_seconds") or 0) + extra_elapsed
            # One column spare: a line exactly as wide as the terminal wraps on some.
            lines = render_progress(shown, width=max(20, self.width - 1))
            text = redraw(self.drawn, lines)
            self.drawn = len(lines)
            return text
        out = []
        key = _progress_key(run)
        if key != self.last_key:
            out.append(progress_line(run))
            self.last_key = key
        for error in run.get("errors") or []:
            if _error_key(error) not in self.errors_seen:
                self.errors_seen.add(_error_key(error))
                out.append(error_line(error))
        return "".join(line + "\n" for line in out)

    def finish(self, run: Mapping[str, Any]) -> str:
        """After the last snapshot: nothing more on a terminal (the view is there); the full
        view once when piped."""
        if self.live:
            return ""
        return "".join(line + "\n" for line in render_progress(run, width=max(20, self.width)))

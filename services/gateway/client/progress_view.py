"""What the CLI prints while it polls a run, and the tree it prints at the end. Pure: the
API's JSON in (the run object of DESIGN.md as ``GET /v1/runs/{id}`` returns it; the backlog
in the JSON export's shape), lines of plain text out (no ANSI codes: the caller may redraw
them, or print them once when not on a terminal). The client knows the API, not the server's
objects: a caller holding a server-side ``Backlog`` serialises it first
(``services.gateway.export.backlog_to_dict``).

``render_progress(run)``::

    Run 0190a7c2 (pipeline): running
    analysis  [########################]  12/12 done
    epics     [########################]  3/3 done
    stories   [##########>>>>..........]  5/12 done, 2 running
    subtasks  [####xx>>>...............]  4/20 done, 3 running, 2 failed
    Elapsed 1m05s, ETA 2m10s
    Tokens 12,345 in, 3,456 out; 42 LLM calls; $0.0123
    In progress (5):
      stories   Checkout with a saved card  14s, 320 tokens
    Errors (2):
      subtasks  st_42: llm_timeout: no answer within 60s

Bars: ``#`` succeeded, ``x`` failed, ``-`` cancelled, ``>`` running, ``.`` pending.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from contracts.pipeline import STAGE_NAMES, TERMINAL_RUN_STATUSES, ItemState

MIN_BAR = 5
"""Narrower than this, the bars are left out and the counts kept."""
MAX_BAR = 40
# A run's counts are keyed by item state; each state but pending/waiting has its mark.
_BAR_CELLS = (
    (ItemState.SUCCEEDED, "#"),
    (ItemState.FAILED, "x"),
    (ItemState.CANCELLED, "-"),
    (ItemState.RUNNING, ">"),
)
_SHOWN_STATES = (ItemState.RUNNING, ItemState.FAILED, ItemState.CANCELLED)
"""Besides those done, the states a stage's summary names when it has any."""


# --- formatting ----------------------------------------------------------------------------


def format_duration(seconds: float | None) -> str:
    """5 → "5s", 65 → "1m05s", 3725 → "1h02m05s"; None → "-"."""
    if seconds is None:
        return "-"
    total = max(0, int(seconds + 0.5))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def format_count(value: int | float | None) -> str:
    return f"{int(value or 0):,}"


def format_cost(usd: float | None) -> str:
    value = float(usd or 0.0)
    return f"${value:,.2f}" if value >= 1 else f"${value:.4f}"


def one_line(text: object) -> str:
    """Any text on one line: runs of whitespace, newlines included, become one space."""
    return " ".join(str(text).split())


def fit(text: str, width: int, ellipsis: str = "…") -> str:
    """``text`` cut to ``width`` characters, ending in ``ellipsis`` when cut."""
    if len(text) <= width:
        return text
    if width <= len(ellipsis):
        return text[: max(0, width)]
    return text[: width - len(ellipsis)] + ellipsis


def total_tokens(run: Mapping[str, Any]) -> int:
    """A run's tokens, in and out together (the one-line forms print one number)."""
    usage = run.get("usage") or {}
    return int(usage.get("input_tokens") or 0) + int(usage.get("output_tokens") or 0)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _int(mapping: Mapping[str, Any], key: str) -> int:
    value = mapping.get(key)
    return int(value) if isinstance(value, int | float) else 0


# --- progress ------------------------------------------------------------------------------


def bar(counts: Mapping[str, Any], width: int) -> str:
    """``[##>>...]``: each state's share of ``total`` in ``width`` cells (cumulative rounding,
    so the cells always add up and a finished stage is full)."""
    total = _int(counts, "total")
    cells = ""
    if total > 0:
        upto = 0
        for key, mark in _BAR_CELLS:
            upto += _int(counts, key)
            end = round(min(upto, total) * width / total)
            cells += mark * max(0, end - len(cells))
    return "[" + cells.ljust(width, ".")[:width] + "]"


def stage_summary(counts: Mapping[str, Any], *, finished: bool = False) -> str:
    """ "5/10 done, 2 running, 1 failed"; "waiting" before the stage knows its items."""
    total = _int(counts, "total")
    if total == 0:
        return "nothing to do" if finished else "waiting"
    parts = [f"{_int(counts, ItemState.SUCCEEDED)}/{total} done"]
    parts += [f"{_int(counts, key)} {key}" for key in _SHOWN_STATES if _int(counts, key)]
    return ", ".join(parts)


def is_finished(run: Mapping[str, Any]) -> bool:
    """Whether the run has ended (a terminal run status): no ETA, nothing more to poll."""
    return run.get("status") in TERMINAL_RUN_STATUSES


def stage_counts(run: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """(stage, its counts) in pipeline order (stages this client does not know last, by
    name); a run without per-stage counts is one line of its own counts."""
    stages = run.get("stages")
    if isinstance(stages, Mapping) and stages:
        known = [name for name in STAGE_NAMES if name in stages]
        others = sorted(name for name in stages if name not in STAGE_NAMES)
        return [(name, stages[name] or {}) for name in (*known, *others)]
    return [(str(run.get("stage") or "run"), run.get("counts") or {})]


def render_progress(
    run: Mapping[str, Any], *, width: int = 80, max_items: int = 8, max_errors: int = 5
) -> list[str]:
    """The live view of a run: a bar per stage, time, usage, items in progress, errors."""
    status = str(run.get("status") or "unknown")
    finished = is_finished(run)
    run_id = str(run.get("id") or "")
    lines = [f"Run {run_id} ({run.get('stage') or '?'}): {status}"]

    stages = stage_counts(run)
    label = max(len(name) for name, _ in stages)
    summaries = [stage_summary(counts, finished=finished) for _, counts in stages]
    bar_width = min(MAX_BAR, width - label - len(max(summaries, key=len)) - 6)
    for (name, counts), summary in zip(stages, summaries, strict=True):
        drawn = f"{bar(counts, bar_width)}  " if bar_width >= MIN_BAR else ""
        lines.append(f"{name:<{label}}  {drawn}{summary}")

    timing = f"Elapsed {format_duration(run.get('elapsed_seconds'))}"
    if not finished:
        eta = run.get("eta_seconds")
        timing += ", ETA unknown" if eta is None else f", ETA {format_duration(eta)}"
    lines.append(timing)

    usage = run.get("usage")
    if isinstance(usage, Mapping):
        lines.append(
            f"Tokens {format_count(usage.get('input_tokens'))} in, "
            f"{format_count(usage.get('output_tokens'))} out; "
            f"{_plural(_int(usage, 'llm_calls'), 'LLM call')}; "
            f"{format_cost(usage.get('cost_usd'))}"
        )

    lines += _in_progress_lines(run.get("in_progress") or [], label, width, max_items)
    lines += _error_lines(run.get("errors") or [], label, width, max_errors)
    return [fit(line, width) for line in lines]


def _in_progress_lines(
    items: Sequence[Mapping[str, Any]], label: int, width: int, limit: int
) -> list[str]:
    if not items:
        return []
    ordered = sorted(items, key=lambda i: -float(i.get("elapsed_seconds") or 0))
    lines = [f"In progress ({len(items)}):"]
    for item in ordered[:limit]:
        facts = format_duration(item.get("elapsed_seconds"))
        if item.get("tokens_so_far"):
            facts += f", {format_count(item['tokens_so_far'])} tokens"
        if _int(item, "attempt") > 1:
            facts += f", attempt {item['attempt']}"
        stage = f"{item.get('stage') or '':<{label}}  " if item.get("stage") else ""
        title = one_line(item.get("title") or item.get("item_id") or "?")
        room = width - 2 - len(stage) - 2 - len(facts)
        lines.append(f"  {stage}{fit(title, max(10, room))}  {facts}")
    if len(items) > limit:
        lines.append(f"  … and {len(items) - limit} more")
    return lines


def _error_lines(
    errors: Sequence[Mapping[str, Any]], label: int, width: int, limit: int
) -> list[str]:
    if not errors:
        return []
    lines = [f"Errors ({len(errors)}):"]
    if len(errors) > limit:
        lines.append(f"  … {len(errors) - limit} earlier, the latest:")
    for error in errors[-limit:] if limit > 0 else []:
        stage = f"{error.get('stage') or '':<{label}}  " if error.get("stage") else ""
        message = one_line(error.get("message") or "")
        text = f"{error.get('item_id') or '?'}: {error.get('code') or 'error'}"
        if message:
            text += f": {message}"
        lines.append(f"  {stage}{text}")
    return [fit(line, width) for line in lines]


# --- the final tree ------------------------------------------------------------------------

_EpicOutline = tuple[str, list[tuple[str, int]]]
"""(epic title, [(story title, subtask count)])"""

_TREE_UNICODE = ("├─ ", "└─ ", "│  ", "   ")
_TREE_ASCII = ("+- ", "`- ", "|  ", "   ")


def _outline(backlog: Mapping[str, Any]) -> tuple[str, list[_EpicOutline]]:
    """(project name, [(epic title, [(story title, subtask count)])]), in the order given:
    the API sends a backlog ordered (epics, stories, subtasks by their ``order``)."""
    project = backlog.get("project")
    name = one_line(project.get("name")) if isinstance(project, Mapping) else "Backlog"
    epics: list[_EpicOutline] = []
    for entry in backlog.get("epics") or []:
        stories = [
            (str((child.get("story") or {}).get("title", "?")), len(child.get("subtasks") or []))
            for child in entry.get("stories") or []
        ]
        epics.append((str((entry.get("epic") or {}).get("title", "?")), stories))
    return name, epics


def render_tree(
    backlog: Mapping[str, Any],
    *,
    width: int = 80,
    ascii_only: bool = False,
    max_stories: int | None = None,
) -> list[str]:
    """Epics → stories → subtask counts, from the JSON export's shape
    (``{project?, epics: [{epic, stories: [{story, subtasks}]}]}``; ``GET .../subtasks`` is
    the same without the project)."""
    tee, last, pipe, gap = _TREE_ASCII if ascii_only else _TREE_UNICODE
    dots = "..." if ascii_only else "…"
    name, epics = _outline(backlog)
    n_stories = sum(len(stories) for _, stories in epics)
    n_subtasks = sum(count for _, stories in epics for _, count in stories)
    lines = [
        f"{one_line(name)}: {_plural(len(epics), 'epic')}, {_stories(n_stories)}, "
        f"{_plural(n_subtasks, 'subtask')}"
    ]
    for e_index, (epic_title, stories) in enumerate(epics):
        epic_last = e_index == len(epics) - 1
        subtasks = sum(count for _, count in stories)
        facts = f" ({_stories(len(stories))}, {_plural(subtasks, 'subtask')})"
        branch = last if epic_last else tee
        title = fit(one_line(epic_title), width - len(branch) - len(facts), dots)
        lines.append(branch + title + facts)
        indent = gap if epic_last else pipe
        shown = stories if max_stories is None else stories[:max_stories]
        hidden = len(stories) - len(shown)
        for s_index, (story_title, count) in enumerate(shown):
            is_last = s_index == len(shown) - 1 and not hidden
            prefix = indent + (last if is_last else tee)
            facts = f" ({_plural(count, 'subtask')})"
            title = fit(one_line(story_title), width - len(prefix) - len(facts), dots)
            lines.append(prefix + title + facts)
        if hidden:
            more = "1 more story" if hidden == 1 else f"{hidden} more stories"
            lines.append(f"{indent}{last}{dots} and {more}")
    return [fit(line, width, dots) for line in lines]


def _stories(count: int) -> str:
    return "1 story" if count == 1 else f"{count} stories"

"""I/O: following a run to its end, by long-polling it with its ETag (a 304 costs the gateway
nothing), and what ``run`` and ``status --follow`` print once it has ended.
"""

from __future__ import annotations

import json
from typing import Any, TextIO

from services.gateway.client.context import Context
from services.gateway.client.exits import exit_code_for
from services.gateway.client.http import Unreachable, etag_of
from services.gateway.client.live import ProgressPrinter
from services.gateway.client.messages import final_report
from services.gateway.client.progress_view import is_finished, render_tree

LONG_POLL_S = 10.0
POLL_FAILURES_TOLERATED = 5
"""While following, this many failed polls in a row (gateway restarting) before giving up."""


class Detached(Exception):
    """Ctrl-C while following: the run goes on."""

    def __init__(self, run_id: str) -> None:
        super().__init__(run_id)
        self.run_id = run_id


def follow(ctx: Context, run: dict[str, Any], *, stream: TextIO | None = None) -> dict[str, Any]:
    """Long-polls the run until it ends, drawing each change; returns the final run.
    Ctrl-C raises Detached; gateway gone for good raises Unreachable. ``stream``: draw there
    instead (stderr under --json), one line per change."""
    console = ctx.console
    live = console.live and stream is None
    out = stream or console.out
    printer = ProgressPrinter(live=live, width=console.width)
    run_id = str(run["id"])

    def write(text: str) -> None:
        if text:
            out.write(text)
            out.flush()

    try:
        write(printer.update(run))
        etag, fetched, failures = etag_of(run), ctx.clock(), 0
        while not is_finished(run):
            asked = ctx.clock()
            try:
                fresh, etag = ctx.gateway.poll_run(run_id, etag, LONG_POLL_S)
            except Unreachable:
                failures += 1
                if failures > POLL_FAILURES_TOLERATED:
                    raise
                ctx.sleep(min(2.0 * failures, 10.0))
                continue
            failures = 0
            if fresh is None:
                write(printer.update(run, extra_elapsed=ctx.clock() - fetched) if live else "")
                if ctx.clock() - asked < 0.5:
                    ctx.sleep(1.0)  # a gateway that does not hold the poll: do not spin
                continue
            run, fetched = fresh, ctx.clock()
            write(printer.update(run))
        write(printer.finish(run))
    except KeyboardInterrupt:
        raise Detached(run_id) from None
    return run


def tree_lines(ctx: Context, project_id: str, name: str | None = None) -> list[str]:
    """The project's backlog as a tree (``GET .../subtasks``, named after the project)."""
    backlog = dict(ctx.gateway.get_json(f"/v1/projects/{project_id}/subtasks"))
    if name is None:
        name = str(ctx.gateway.get_json(f"/v1/projects/{project_id}").get("name") or "Backlog")
    backlog["project"] = {"name": name}
    return render_tree(
        backlog, width=max(40, ctx.console.width - 1), ascii_only=not ctx.console.unicode
    )


def finish_followed(ctx: Context, run: dict[str, Any], name: str | None = None) -> int:
    """The end of ``run`` and ``status --follow``: tree, where to look, the exit code."""
    if ctx.args.json:
        ctx.console.print(json.dumps(run, indent=2))
        return exit_code_for(run.get("status"))
    lines = tree_lines(ctx, str(run["project_id"]), name)
    for line in final_report(run, lines, ctx.args.url):
        ctx.console.print(line)
    return exit_code_for(run.get("status"))

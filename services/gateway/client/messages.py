"""Pure: what the client prints about the gateway and its runs (other than the live view):
error messages that say what to do next, the report at a run's end, the runs table, the
answers of ``cancel`` and ``retry``. The API's JSON in, text out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from contracts.pipeline import TERMINAL_RUN_STATUSES, ItemState, RunStatus
from services.gateway.client.args import DEFAULT_URL
from services.gateway.client.keyfile import DEFAULT_STATE_DIR, KEY_FILE_NAME, KeySource
from services.gateway.client.progress_view import (
    format_cost,
    format_count,
    format_duration,
    one_line,
    total_tokens,
)

NOT_SUCCEEDED = TERMINAL_RUN_STATUSES - {RunStatus.SUCCEEDED}
"""A run that ended so has errors worth looking at (and items worth retrying)."""
_NOT_DONE_STATES = (ItemState.FAILED, ItemState.CANCELLED)


def unreachable_message(url: str, error: BaseException | None = None) -> str:
    text = f"cardflow: cannot reach the gateway at {url} (is it running? `make up`)"
    if error is not None and str(error):
        text += f"\n  ({type(error).__name__}: {error})"
    return text


def unauthorized_message(source: KeySource, detail: str) -> str:
    """A 401: which key was sent and where it came from, or every place looked in."""
    if source.key is None:
        looked = "".join(f"\n    {p}" for p in source.looked_in)
        return (
            "cardflow: the gateway wants an API key and none was found: pass --api-key, set "
            f"CARDFLOW_API_KEY, or start the stack with `make up` (it writes one). Looked in:"
            f"{looked}"
        )
    return (
        f"cardflow: the API key is missing or invalid ({detail.rstrip('.')}); it was read "
        f"from {source.origin}. `make up` prints the local key and keeps it in "
        f"{DEFAULT_STATE_DIR}/{KEY_FILE_NAME}."
    )


def unsupported_message(action: str, url: str) -> str:
    return (
        f"cardflow: the gateway at {url} does not support `{action}` yet "
        f"(no POST /v1/runs/{{id}}/{action} endpoint); nothing was changed"
    )


def cli_command(url: str) -> str:
    """How to call this CLI again against the same gateway, for the hints it prints."""
    return "cardflow" if url.rstrip("/") == DEFAULT_URL else f"cardflow --url {url}"


def run_urls(base_url: str, run: Mapping[str, Any]) -> dict[str, str]:
    project = run.get("project_id", "")
    return {
        "run": f"{base_url}/v1/runs/{run.get('id', '')}",
        "export": f"{base_url}/v1/projects/{project}/export?format=markdown",
    }


def outcome_line(run: Mapping[str, Any]) -> str:
    """One sentence on how a finished run ended."""
    counts = run.get("counts") or {}
    usage = run.get("usage") or {}
    total = int(counts.get("total") or 0)
    done = int(counts.get(ItemState.SUCCEEDED) or 0)
    status = str(run.get("status") or "unknown")
    text = (
        f"Run {run.get('id')} {status} in {format_duration(run.get('elapsed_seconds'))}: "
        f"{done}/{total} items done"
    )
    for state in _NOT_DONE_STATES:
        if counts.get(state):
            text += f", {counts[state]} {state}"
    return (
        text + f"; {format_count(total_tokens(run))} tokens, {format_cost(usage.get('cost_usd'))}"
    )


def final_report(
    run: Mapping[str, Any],
    tree_lines: Sequence[str],
    base_url: str,
) -> list[str]:
    """What ``cardflow run`` prints when the run has ended: outcome, tree, where to look."""
    urls = run_urls(base_url, run)
    cli = cli_command(base_url)
    project = run.get("project_id", "")
    lines = ["", outcome_line(run), "", *tree_lines, ""]
    lines += [
        "See it:",
        f"  run      {urls['run']}",
        f"           {cli} status {run.get('id')}",
        f"  backlog  {urls['export']}",
        f"           {cli} export {project} --format markdown|csv|json",
    ]
    if run.get("status") in NOT_SUCCEEDED:
        lines.append(f"  errors   {urls['run']}/items   ({cli} retry {run.get('id')})")
    return lines


def runs_table(runs: Sequence[Mapping[str, Any]], names: Mapping[str, str]) -> list[str]:
    """``cardflow runs``: one line per run, in the order given."""
    if not runs:
        return ["no runs yet; `cardflow run FILE` starts one"]
    rows = [("RUN", "PROJECT", "STAGE", "STATUS", "DONE", "ELAPSED", "CREATED")]
    for run in runs:
        counts = run.get("counts") or {}
        project = names.get(str(run.get("project_id")), str(run.get("project_id", "")))
        rows.append(
            (
                str(run.get("id", "")),
                one_line(project)[:30],
                str(run.get("stage", "")),
                str(run.get("status", "")),
                f"{counts.get(ItemState.SUCCEEDED, 0)}/{counts.get('total', 0)}",
                format_duration(run.get("elapsed_seconds")),
                str(run.get("created_at") or "")[:19].replace("T", " "),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]


def newest_first(runs: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    # ISO 8601 UTC timestamps of one format sort as text.
    return sorted(runs, key=lambda r: str(r.get("created_at") or ""), reverse=True)


def action_result(action: str, run_id: str, body: Any, cli: str = "cardflow") -> str:
    """What ``cancel``/``retry`` print on success (the endpoints answer a run object)."""
    if isinstance(body, Mapping) and body.get("id"):
        new_id, status = body["id"], body.get("status", "?")
        if action == "retry" and new_id != run_id:
            return f"retrying run {run_id} as run {new_id} ({status}): {cli} status {new_id}"
        return f"{action}: run {new_id} is {status}: {cli} status {new_id}"
    return f"{action}: requested for run {run_id}: {cli} status {run_id}"

"""The ``cardflow`` command line: a client of the gateway's HTTP API (DESIGN.md, v1).

    cardflow run FILE... [--project ID | --name NAME] [--stage STAGE] [--detach]
    cardflow status RUN [--follow]
    cardflow runs [--project ID]
    cardflow export PROJECT [--format json|csv|markdown] [-o FILE]
    cardflow quality PROJECT | questions PROJECT
    cardflow cancel RUN | retry RUN
    cardflow health
    cardflow dlq list [--topic T] | dlq replay (--topic T | --id EVENT_ID...) [--dry-run]

The ``dlq`` commands talk to Kafka, not to the gateway (``services.runtime.dlq.command``).

Exit codes: 0 the run succeeded (or the command did what it was asked); 1 the run ended
partial, failed or cancelled; 2 a usage error, an API error or no gateway; 130 Ctrl-C (the run
goes on: Ctrl-C only detaches).

The module is in two halves: pure functions (parsing, the API key lookup, what to print and
when, exit codes) and the I/O around them (:class:`Gateway` over httpx, :class:`Console`,
the ``cmd_*`` functions). The run's live view itself is ``services.gateway.progress_view``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx

from contracts.pipeline import RUN_STAGES
from services.gateway import quality_view
from services.gateway.progress_view import (
    STAGE_ORDER,
    TERMINAL_STATUSES,
    format_cost,
    format_count,
    format_duration,
    one_line,
    render_progress,
    render_tree,
    stage_summary,
)
from services.runtime.dlq import command as dlq_cli

DEFAULT_URL = "http://127.0.0.1:8000"
KEY_FILE_NAME = "api-key"
DEFAULT_STATE_DIR = ".cardflow"
CHECKOUT = Path(__file__).resolve().parents[2]
"""The checkout this module runs from (an editable install): `make up` keeps its key here."""

EXIT_OK = 0
EXIT_RUN_NOT_SUCCEEDED = 1
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130

EXPORT_FORMATS = ("json", "csv", "markdown")
LONG_POLL_S = 10.0
POLL_FAILURES_TOLERATED = 5
"""While following, this many failed polls in a row (gateway restarting) before giving up."""
UPLOAD_CONTENT_TYPES = {
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".txt": "text/plain",
    ".csv": "text/csv",
    ".tsv": "text/tab-separated-values",
    ".json": "application/json",
}


# ============================================================================================
# Pure: arguments


class UsageError(Exception):
    """A mistake in how the command was called; exit 2."""


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    """The whole command line. Global options may come before or after the command
    (``cardflow --json runs`` and ``cardflow runs --json`` alike)."""
    parser = argparse.ArgumentParser(
        prog="cardflow",
        description="Client of the cardflow gateway: upload documents, run the pipeline, "
        "follow its progress, export the backlog.",
        epilog="Exit codes: 0 succeeded, 1 run partial/failed/cancelled, 2 usage or API "
        "error, 130 interrupted (the run goes on).",
    )
    _add_globals(parser, env, suppress=False)
    common = argparse.ArgumentParser(add_help=False)
    _add_globals(common, env, suppress=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        parents=[common],
        help="upload files and follow a run live",
        description="Create a project (or use --project), upload each file, start a run and "
        "follow it live. Ctrl-C detaches; the run goes on.",
    )
    run.add_argument("files", nargs="+", metavar="FILE", help=".md, .txt, .csv or .json")
    target = run.add_mutually_exclusive_group()
    target.add_argument("--project", metavar="ID", help="add to this project")
    target.add_argument("--name", help="name of the new project (default: first file's stem)")
    run.add_argument(
        "--stage", choices=RUN_STAGES, default="pipeline", help="what to run (default: pipeline)"
    )
    run.add_argument(
        "--min-subtasks",
        type=_positive,
        metavar="N",
        help="subtasks per story, at least (default 3)",
    )
    run.add_argument(
        "--max-subtasks",
        type=_positive,
        metavar="N",
        help="subtasks per story, at most (default 6)",
    )
    run.add_argument("--no-tests", action="store_true", help="no test subtasks")
    run.add_argument("--no-docs", action="store_true", help="no documentation subtasks")
    run.add_argument("--detach", action="store_true", help="start the run and return")

    status = commands.add_parser("status", parents=[common], help="show a run")
    status.add_argument("run_id", metavar="RUN")
    status.add_argument("--follow", "-f", action="store_true", help="follow it live to the end")

    runs = commands.add_parser("runs", parents=[common], help="list runs, newest first")
    runs.add_argument("--project", metavar="ID", help="only this project's (default: all)")

    export = commands.add_parser("export", parents=[common], help="download a backlog")
    export.add_argument("project_id", metavar="PROJECT")
    export.add_argument(
        "--format", choices=EXPORT_FORMATS, default="markdown", help="(default: markdown)"
    )
    export.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")

    for command, what in (
        ("quality", "show a project's quality report"),
        ("questions", "list a project's open questions"),
    ):
        sub = commands.add_parser(command, parents=[common], help=what)
        sub.add_argument("project_id", metavar="PROJECT")

    for action, what in (("cancel", "stop a run"), ("retry", "rerun a run's failed items")):
        sub = commands.add_parser(action, parents=[common], help=what)
        sub.add_argument("run_id", metavar="RUN")

    commands.add_parser("health", parents=[common], help="show the gateway's readiness")
    dlq_cli.add_parser(commands, common)
    return parser


def _add_globals(parser: argparse.ArgumentParser, env: Mapping[str, str], suppress: bool) -> None:
    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument(
        "--url",
        default=default(env.get("CARDFLOW_URL") or DEFAULT_URL),
        help=f"gateway base URL (env CARDFLOW_URL; {DEFAULT_URL})",
    )
    parser.add_argument(
        "--api-key",
        default=default(None),
        help="API key (env CARDFLOW_API_KEY; else the key `make up` keeps in "
        ".cardflow/api-key, or CARDFLOW_STATE_DIR/api-key)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="machine-readable output (JSON on stdout; progress, if any, on stderr)",
    )


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def parse_args(argv: Sequence[str], env: Mapping[str, str]) -> argparse.Namespace:
    """Arguments, checked beyond what argparse checks; UsageError (exit 2) if wrong."""
    args = build_parser(env).parse_args(list(argv))
    args.url = str(args.url).rstrip("/")
    if args.command == "run":
        low, high = args.min_subtasks, args.max_subtasks
        if low is not None and high is not None and low > high:
            raise UsageError("--min-subtasks must not exceed --max-subtasks")
    return args


def run_request(args: argparse.Namespace) -> dict[str, Any]:
    """The body of ``POST /v1/projects/{id}/runs`` for ``cardflow run``: only the options
    given are sent; the gateway's defaults fill in the rest."""
    subtasks: dict[str, Any] = {}
    if args.min_subtasks is not None:
        subtasks["min_per_story"] = args.min_subtasks
    if args.max_subtasks is not None:
        subtasks["max_per_story"] = args.max_subtasks
    # A range given by one end only: keep it valid against the other end's default.
    if "min_per_story" in subtasks and "max_per_story" not in subtasks:
        subtasks["max_per_story"] = max(subtasks["min_per_story"], 6)
    if "max_per_story" in subtasks and "min_per_story" not in subtasks:
        subtasks["min_per_story"] = min(subtasks["max_per_story"], 3)
    if args.no_tests:
        subtasks["include_tests"] = False
    if args.no_docs:
        subtasks["include_docs"] = False
    body: dict[str, Any] = {"stage": args.stage}
    if subtasks:
        body["options"] = {"subtasks": subtasks}
    return body


def project_name(files: Sequence[str], name: str | None) -> str:
    """``--name``, else the first file's stem (``docs/field-service.md`` → ``field-service``)."""
    if name and name.strip():
        return name.strip()
    return Path(files[0]).stem or "cardflow"


def content_type_of(path: str) -> str:
    return UPLOAD_CONTENT_TYPES.get(Path(path).suffix.lower(), "application/octet-stream")


def exit_code_for(status: str | None) -> int:
    """What a finished run's status means to a shell: 0 only for a full success."""
    return EXIT_OK if status == "succeeded" else EXIT_RUN_NOT_SUCCEEDED


# ============================================================================================
# Pure: the API key


@dataclass(frozen=True)
class KeySource:
    """The API key found (or None) and where: the 401 message names it."""

    key: str | None
    origin: str
    looked_in: tuple[Path, ...] = ()


def key_file_candidates(env: Mapping[str, str], cwd: Path, checkout: Path) -> list[Path]:
    """Where `make up` may have left the key, in the order they are tried: the state folder
    of CARDFLOW_STATE_DIR (relative: to the current folder, then to the checkout), else
    ``.cardflow/api-key`` in the current folder or the nearest parent that has one, then in
    the checkout this CLI is installed from."""
    state = env.get("CARDFLOW_STATE_DIR", "").strip()
    if state:
        folder = Path(state).expanduser()
        folders = [folder] if folder.is_absolute() else [cwd / folder, checkout / folder]
    else:
        folders = [parent / DEFAULT_STATE_DIR for parent in (cwd, *cwd.parents)]
        folders.append(checkout / DEFAULT_STATE_DIR)
    unique: list[Path] = []
    for folder in folders:
        candidate = folder / KEY_FILE_NAME
        if candidate not in unique:
            unique.append(candidate)
    return unique


def find_api_key(
    flag: str | None,
    env: Mapping[str, str],
    cwd: Path,
    checkout: Path = CHECKOUT,
    read: Callable[[Path], str | None] | None = None,
) -> KeySource:
    """--api-key, then CARDFLOW_API_KEY, then the first key file that exists."""
    if flag:
        return KeySource(flag, "--api-key")
    if env.get("CARDFLOW_API_KEY"):
        return KeySource(env["CARDFLOW_API_KEY"], "the CARDFLOW_API_KEY environment variable")
    reader = read or _read_key_file
    candidates = key_file_candidates(env, cwd, checkout)
    for path in candidates:
        key = reader(path)
        if key:
            return KeySource(key, str(path))
    return KeySource(None, "nowhere", tuple(candidates))


def _read_key_file(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


# ============================================================================================
# Pure: messages


def unreachable_message(url: str, error: BaseException | None = None) -> str:
    text = f"cardflow: cannot reach the gateway at {url} (is it running? `make up`)"
    if error is not None and str(error):
        text += f"\n  ({type(error).__name__}: {error})"
    return text


def unauthorized_message(source: KeySource, detail: str) -> str:
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
    done = int(counts.get("succeeded") or 0)
    tokens = int(usage.get("input_tokens") or 0) + int(usage.get("output_tokens") or 0)
    status = str(run.get("status") or "unknown")
    text = (
        f"Run {run.get('id')} {status} in {format_duration(run.get('elapsed_seconds'))}: "
        f"{done}/{total} items done"
    )
    for key in ("failed", "cancelled"):
        if counts.get(key):
            text += f", {counts[key]} {key}"
    return text + f"; {format_count(tokens)} tokens, {format_cost(usage.get('cost_usd'))}"


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
    if run.get("status") in ("partial", "failed", "cancelled"):
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
                f"{counts.get('succeeded', 0)}/{counts.get('total', 0)}",
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


# ============================================================================================
# Pure: the live view, redrawn in place on a terminal or a line per change when piped


def use_live_view(isatty: bool, term: str | None) -> bool:
    """Redraw in place only on a real terminal that understands cursor movement."""
    return isatty and (term or "").lower() not in ("dumb", "")


def redraw(previous_lines: int, lines: Sequence[str]) -> str:
    """ANSI text that replaces the ``previous_lines`` lines just printed by ``lines``:
    cursor up, back to column 0, erase to the end of the screen, print."""
    move = f"\x1b[{previous_lines}A\r\x1b[J" if previous_lines else ""
    return move + "".join(line + "\n" for line in lines)


def stage_counts(run: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    stages = run.get("stages")
    if isinstance(stages, Mapping) and stages:
        order = [s for s in STAGE_ORDER if s in stages] + sorted(
            s for s in stages if s not in STAGE_ORDER
        )
        return [(name, stages[name] or {}) for name in order]
    return [(str(run.get("stage") or "run"), run.get("counts") or {})]


def progress_line(run: Mapping[str, Any]) -> str:
    """The one-line form of the view, for logs and pipes."""
    status = str(run.get("status") or "unknown")
    finished = status in TERMINAL_STATUSES
    stages = "; ".join(
        f"{name} {stage_summary(counts, finished=finished)}" for name, counts in stage_counts(run)
    )
    text = f"[{format_duration(run.get('elapsed_seconds'))}] {status}: {stages}"
    if not finished:
        eta = run.get("eta_seconds")
        text += f" | ETA {'unknown' if eta is None else format_duration(eta)}"
    usage = run.get("usage") or {}
    tokens = int(usage.get("input_tokens") or 0) + int(usage.get("output_tokens") or 0)
    return text + f" | {format_count(tokens)} tokens, {format_cost(usage.get('cost_usd'))}"


def _progress_key(run: Mapping[str, Any]) -> tuple[Any, ...]:
    """What makes a new line worth printing when piped: status and counts, not the clock."""
    finished = run.get("status") in TERMINAL_STATUSES
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
            if extra_elapsed and run.get("status") not in TERMINAL_STATUSES:
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


# ============================================================================================
# I/O: the gateway


class ApiError(Exception):
    """An HTTP error answer (problem+json when the gateway wrote it)."""

    def __init__(self, status: int, code: str, detail: str, body: Any = None) -> None:
        super().__init__(f"{code}: {detail}")
        self.status, self.code, self.detail, self.body = status, code, detail, body

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, Mapping):
            code = str(body.get("code") or f"http_{response.status_code}")
            detail = str(body.get("detail") or body.get("title") or response.reason_phrase)
        else:
            code = f"http_{response.status_code}"
            detail = one_line(response.text)[:300] or response.reason_phrase
        return cls(response.status_code, code, detail, body)


class Unreachable(Exception):
    """No HTTP answer at all (refused, DNS, timeout)."""

    def __init__(self, url: str, error: BaseException) -> None:
        super().__init__(str(error))
        self.url, self.error = url, error


class Gateway:
    """The few calls the CLI makes; raises ApiError or Unreachable."""

    def __init__(
        self,
        url: str,
        key: str | None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"User-Agent": "cardflow-cli"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self.url = url
        self.http = httpx.Client(
            base_url=url,
            headers=headers,
            timeout=httpx.Timeout(30.0, connect=5.0),
            transport=transport,
        )

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise Unreachable(self.url, error) from error
        if response.status_code >= 400:
            raise ApiError.from_response(response)
        return response

    def get_json(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs).json()

    def create_project(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", "/v1/projects", json={"name": name}).json()
        return result

    def upload(self, project_id: str, path: Path) -> dict[str, Any]:
        with path.open("rb") as handle:
            files = {"file": (path.name, handle, content_type_of(str(path)))}
            response = self.request("POST", f"/v1/projects/{project_id}/uploads", files=files)
        result: dict[str, Any] = response.json()
        return result

    def start_run(self, project_id: str, body: Mapping[str, Any], key: str) -> dict[str, Any]:
        """With an Idempotency-Key, so a retry after a lost answer starts no second run."""
        path = f"/v1/projects/{project_id}/runs"
        for attempt in range(3):
            try:
                response = self.request(
                    "POST", path, json=dict(body), headers={"Idempotency-Key": key}
                )
            except Unreachable:
                if attempt == 2:
                    raise
                time.sleep(1.0 + attempt)
                continue
            result: dict[str, Any] = response.json()
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    def poll_run(
        self, run_id: str, etag: str | None, wait_s: float
    ) -> tuple[dict[str, Any] | None, str | None]:
        """``GET /v1/runs/{id}?wait=`` with If-None-Match: (run, its ETag), or (None, the
        same ETag) when nothing changed within ``wait_s`` (304)."""
        headers = {"If-None-Match": etag} if etag else {}
        params = {"wait": f"{wait_s:g}"} if wait_s else {}
        response = self.request(
            "GET",
            f"/v1/runs/{run_id}",
            params=params,
            headers=headers,
            timeout=httpx.Timeout(wait_s + 20.0, connect=5.0),
        )
        if response.status_code == 304:
            return None, etag
        run: dict[str, Any] = response.json()
        return run, response.headers.get("ETag") or etag_of(run)


def etag_of(run: Mapping[str, Any]) -> str | None:
    version = run.get("version")
    return f'"v{version}"' if version is not None else None


# ============================================================================================
# I/O: the terminal


@dataclass
class Console:
    out: TextIO
    err: TextIO
    live: bool
    width: int = 80

    @classmethod
    def for_streams(cls, out: TextIO, err: TextIO, env: Mapping[str, str]) -> Console:
        isatty = bool(getattr(out, "isatty", lambda: False)())
        width = shutil.get_terminal_size((100, 24)).columns if isatty else 100
        return cls(out, err, use_live_view(isatty, env.get("TERM")), width)

    @property
    def unicode(self) -> bool:
        encoding = (getattr(self.out, "encoding", None) or "").lower().replace("-", "")
        return encoding.startswith("utf")

    @property
    def arrow(self) -> str:
        return "→" if self.unicode else "->"

    def print(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def write(self, text: str) -> None:
        if text:
            self.out.write(text)
            self.out.flush()

    def error(self, text: str) -> None:
        self.err.write(text + "\n")
        self.err.flush()


@dataclass
class Context:
    args: argparse.Namespace
    gateway: Gateway
    console: Console
    key: KeySource
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic


# ============================================================================================
# I/O: following a run


class Detached(Exception):
    """Ctrl-C while following: the run goes on."""

    def __init__(self, run_id: str) -> None:
        super().__init__(run_id)
        self.run_id = run_id


def follow(ctx: Context, run: dict[str, Any], *, stream: TextIO | None = None) -> dict[str, Any]:
    """Long-polls the run until it ends, drawing each change; returns the final run.
    Ctrl-C raises Detached; gateway gone for good raises Unreachable."""
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
        while run.get("status") not in TERMINAL_STATUSES:
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


# ============================================================================================
# I/O: commands


def cmd_run(ctx: Context) -> int:
    args, console = ctx.args, ctx.console
    paths = [Path(f) for f in args.files]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise UsageError(f"no such file: {', '.join(missing)}")
    # With --json, stdout is the JSON document; the human part goes to stderr.
    say = console.error if args.json else console.print

    if args.project:
        project = ctx.gateway.get_json(f"/v1/projects/{args.project}")
    else:
        project = ctx.gateway.create_project(project_name(args.files, args.name))
        say(f"project {project['id']}  {project.get('name', '')}")
    project_id = str(project["id"])

    uploaded: list[dict[str, Any]] = []
    for path in paths:
        try:
            result = ctx.gateway.upload(project_id, path)
        except ApiError as error:
            console.error(f"cardflow: {path.name}: {error.code}: {error.detail}")
            kept = sum(len(u["cards"]) for u in uploaded)
            console.error(
                f"  kept: project {project_id} with {kept} cards from "
                f"{len(uploaded)} file(s) uploaded before it; no run was started. Fix the "
                f"file, then: {cli_command(args.url)} run FILE... --project {project_id}"
            )
            return EXIT_ERROR
        except OSError as error:
            raise UsageError(f"cannot read {path}: {error.strerror or error}") from error
        uploaded.append({"file": str(path), **result})
        say(f"{path.name} {console.arrow} {len(result.get('cards') or [])} cards")

    run = ctx.gateway.start_run(project_id, run_request(args), str(uuid.uuid4()))
    run_id = str(run["id"])
    if args.detach:
        if args.json:
            console.print(json.dumps({"project": project, "uploads": uploaded, "run": run}))
        else:
            console.print(f"run {run_id} started ({run.get('stage')}); detached.")
            console.print(f"  follow it: {cli_command(args.url)} status {run_id} --follow")
            console.print(f"  see it:    {run_urls(args.url, run)['run']}")
        return EXIT_OK
    say(f"run {run_id} started ({run.get('stage')}); Ctrl-C detaches, the run goes on")
    final = follow(ctx, run, stream=console.err if args.json else None)
    if args.json:
        console.print(json.dumps({"project": project, "uploads": uploaded, "run": final}))
        return exit_code_for(final.get("status"))
    return finish_followed(ctx, final, str(project.get("name") or "") or None)


def cmd_status(ctx: Context) -> int:
    args, console = ctx.args, ctx.console
    run, _ = ctx.gateway.poll_run(args.run_id, None, 0)
    assert run is not None
    if args.follow:
        final = follow(ctx, run, stream=console.err if args.json else None)
        return finish_followed(ctx, final)
    if args.json:
        console.print(json.dumps(run, indent=2))
        return EXIT_OK
    for line in render_progress(run, width=max(40, console.width - 1)):
        console.print(line)
    if run.get("status") not in TERMINAL_STATUSES:
        console.print(f"follow it: {cli_command(args.url)} status {args.run_id} --follow")
    return EXIT_OK


def cmd_runs(ctx: Context) -> int:
    args = ctx.args
    if args.project:
        project = ctx.gateway.get_json(f"/v1/projects/{args.project}")
        projects = [project]
    else:
        projects = ctx.gateway.get_json("/v1/projects").get("projects") or []
    runs: list[Mapping[str, Any]] = []
    for project in projects:
        runs += ctx.gateway.get_json(f"/v1/projects/{project['id']}/runs").get("runs") or []
    ordered = newest_first(runs)
    if args.json:
        ctx.console.print(json.dumps({"runs": ordered}, indent=2))
        return EXIT_OK
    names = {str(p["id"]): str(p.get("name") or "") for p in projects}
    for line in runs_table(ordered, names):
        ctx.console.print(line)
    return EXIT_OK


def cmd_export(ctx: Context) -> int:
    args = ctx.args
    response = ctx.gateway.request(
        "GET", f"/v1/projects/{args.project_id}/export", params={"format": args.format}
    )
    if args.output:
        try:
            Path(args.output).write_bytes(response.content)
        except OSError as error:
            raise UsageError(f"cannot write {args.output}: {error}") from error
        ctx.console.error(f"wrote {args.output} ({len(response.content):,} bytes, {args.format})")
    else:
        ctx.console.write(response.text if response.text.endswith("\n") else response.text + "\n")
    return EXIT_OK


QUALITY_PAGE = 200  # the API's largest page


def cmd_quality(ctx: Context) -> int:
    project_id = ctx.args.project_id
    report = ctx.gateway.get_json(
        f"/v1/projects/{project_id}/quality", params={"limit": QUALITY_PAGE}
    )
    if ctx.args.json:
        ctx.console.print(json.dumps(report, indent=2))
        return EXIT_OK
    name = str(ctx.gateway.get_json(f"/v1/projects/{project_id}").get("name") or "")
    for line in quality_view.quality_lines(report, name):
        ctx.console.print(line)
    return EXIT_OK


def cmd_questions(ctx: Context) -> int:
    """Every open question: the pages of ``GET .../questions`` one after another."""
    path = f"/v1/projects/{ctx.args.project_id}/questions"
    questions: list[dict[str, Any]] = []
    offset: int | None = 0
    while offset is not None:
        page = ctx.gateway.get_json(path, params={"offset": offset, "limit": QUALITY_PAGE})
        questions += page.get("questions") or []
        offset = page.get("next_offset")
    if ctx.args.json:
        ctx.console.print(json.dumps({"questions": questions}, indent=2))
        return EXIT_OK
    for line in quality_view.questions_lines(questions):
        ctx.console.print(line)
    return EXIT_OK


def cmd_action(ctx: Context) -> int:
    """``cancel`` or ``retry``: POST /v1/runs/{id}/<action>."""
    args, action = ctx.args, ctx.args.command
    try:
        response = ctx.gateway.request("POST", f"/v1/runs/{args.run_id}/{action}")
    except ApiError as error:
        if error.status == 405:
            ctx.console.error(unsupported_message(action, args.url))
            return EXIT_ERROR
        if error.status != 404:
            raise
        # 404: no such run, or no such endpoint. The run tells which.
        try:
            ctx.gateway.poll_run(args.run_id, None, 0)
        except ApiError as missing:
            if missing.status == 404:
                ctx.console.error(f"cardflow: no run {args.run_id} (not_found)")
                return EXIT_ERROR
            raise
        ctx.console.error(unsupported_message(action, args.url))
        return EXIT_ERROR
    body: Any = None
    if response.content:
        try:
            body = response.json()
        except ValueError:
            body = None
    if args.json:
        ctx.console.print(json.dumps(body, indent=2))
    else:
        ctx.console.print(action_result(action, args.run_id, body, cli_command(args.url)))
    return EXIT_OK


def cmd_health(ctx: Context) -> int:
    try:
        response = ctx.gateway.http.get("/readyz", timeout=5)
    except httpx.TransportError as error:
        raise Unreachable(ctx.args.url, error) from error
    try:
        body = response.json()
    except ValueError:
        body = {"status": response.status_code, "body": response.text}
    ctx.console.print(json.dumps(body, indent=2))
    return EXIT_OK if response.status_code == 200 else EXIT_RUN_NOT_SUCCEEDED


COMMANDS: dict[str, Callable[[Context], int]] = {
    "run": cmd_run,
    "status": cmd_status,
    "runs": cmd_runs,
    "export": cmd_export,
    "quality": cmd_quality,
    "questions": cmd_questions,
    "cancel": cmd_action,
    "retry": cmd_action,
    "health": cmd_health,
}


def main(
    argv: Sequence[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    transport: httpx.BaseTransport | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    cwd: Path | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    env = dict(os.environ) if env is None else env
    out, err = stdout or sys.stdout, stderr or sys.stderr
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv, env)
    except SystemExit as exit_:  # argparse: --help (0) or a usage error (2)
        return int(exit_.code or 0) if isinstance(exit_.code, int | None) else EXIT_ERROR
    except UsageError as error:
        err.write(f"cardflow: {error}\n")
        return EXIT_ERROR
    if args.command == "dlq":  # Kafka, not the gateway: no URL, no key
        return dlq_cli.run(args, env, out, err)
    key = find_api_key(args.api_key, env, cwd or Path.cwd())
    console = Console.for_streams(out, err, env)
    gateway = Gateway(args.url, key.key, transport)
    ctx = Context(args, gateway, console, key, sleep=sleep)
    try:
        return COMMANDS[args.command](ctx)
    except UsageError as error:
        console.error(f"cardflow: {error}")
        return EXIT_ERROR
    except Unreachable as error:
        console.error(unreachable_message(error.url, error.error))
        return EXIT_ERROR
    except ApiError as error:
        if error.status == 401:
            console.error(unauthorized_message(key, error.detail))
        else:
            console.error(f"cardflow: {error.code}: {error.detail} (HTTP {error.status})")
        return EXIT_ERROR
    except Detached as detached:
        command = cli_command(args.url)
        console.error(f"\ndetached; the run goes on: {command} status {detached.run_id}")
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        console.error("\ncardflow: interrupted")
        return EXIT_INTERRUPTED
    finally:
        gateway.close()


if __name__ == "__main__":
    sys.exit(main())

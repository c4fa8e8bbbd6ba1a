"""Pure: the ``cardflow`` command line's arguments, and the request body they make.

The parser is handed out with its subcommands and its global options (:class:`CommandLine`)
so that the console script (``services.gateway.cardflow``) can add commands another program
answers (``dlq``) to the same ``cardflow --help``, without this package importing them.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

from contracts.api import ExportFormat
from contracts.events import SubtaskOptions
from contracts.pipeline import PIPELINE, RUN_STAGES

DEFAULT_URL = "http://127.0.0.1:8000"
EXPORT_FORMATS: tuple[str, ...] = tuple(f.value for f in ExportFormat)
SUBTASK_DEFAULTS = SubtaskOptions()
"""What the gateway fills in for options not sent (the contract's defaults)."""

Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class UsageError(Exception):
    """A mistake in how the command was called; exit 2."""


@dataclass(frozen=True)
class CommandLine:
    """The whole parser, with what another program's commands need to join it: the
    subcommands (``commands.add_parser``) and the global options each of them takes
    (``parents=[common]``)."""

    parser: argparse.ArgumentParser
    commands: Subcommands
    common: argparse.ArgumentParser

    def parse(self, argv: Sequence[str]) -> argparse.Namespace:
        """Arguments, checked beyond what argparse checks; UsageError (exit 2) if wrong.
        argparse itself exits (SystemExit) on --help and on its own usage errors."""
        args = self.parser.parse_args(list(argv))
        args.url = str(args.url).rstrip("/")
        if args.command == "run":
            low, high = args.min_subtasks, args.max_subtasks
            if low is not None and high is not None and low > high:
                raise UsageError("--min-subtasks must not exceed --max-subtasks")
        return args


def command_line(env: Mapping[str, str]) -> CommandLine:
    """The client's commands. Global options may come before or after the command
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
        "--stage", choices=RUN_STAGES, default=PIPELINE, help=f"what to run (default: {PIPELINE})"
    )
    run.add_argument(
        "--min-subtasks",
        type=_positive,
        metavar="N",
        help=f"subtasks per story, at least (default {SUBTASK_DEFAULTS.min_per_story})",
    )
    run.add_argument(
        "--max-subtasks",
        type=_positive,
        metavar="N",
        help=f"subtasks per story, at most (default {SUBTASK_DEFAULTS.max_per_story})",
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
        "--format",
        choices=EXPORT_FORMATS,
        default=ExportFormat.MARKDOWN.value,
        help=f"(default: {ExportFormat.MARKDOWN.value})",
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
    return CommandLine(parser, commands, common)


def _add_globals(parser: argparse.ArgumentParser, env: Mapping[str, str], suppress: bool) -> None:
    # On the subcommands (suppress=True) an option not given must not overwrite the value
    # the top-level parser already set, so their default is SUPPRESS.
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
    """The client's commands only (the console script's :func:`CommandLine.parse` also
    knows ``dlq``)."""
    return command_line(env).parse(argv)


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
        subtasks["max_per_story"] = max(subtasks["min_per_story"], SUBTASK_DEFAULTS.max_per_story)
    if "max_per_story" in subtasks and "min_per_story" not in subtasks:
        subtasks["min_per_story"] = min(subtasks["max_per_story"], SUBTASK_DEFAULTS.min_per_story)
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

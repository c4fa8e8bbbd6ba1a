"""I/O: one function per ``cardflow`` command of the gateway's API, each returning its exit
code. What they print is decided by the pure modules (messages, the views); the calls are
:class:`~services.gateway.client.http.Gateway`'s.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from contracts.api import MAX_LIST_LIMIT
from services.gateway.client import quality_view
from services.gateway.client.args import UsageError, project_name, run_request
from services.gateway.client.context import Context
from services.gateway.client.exits import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_RUN_NOT_SUCCEEDED,
    exit_code_for,
)
from services.gateway.client.follow import finish_followed, follow
from services.gateway.client.http import ApiError
from services.gateway.client.messages import (
    action_result,
    cli_command,
    newest_first,
    run_urls,
    runs_table,
    unsupported_message,
)
from services.gateway.client.progress_view import is_finished, render_progress

QUALITY_PAGE = MAX_LIST_LIMIT
"""Entries asked for per page: the API's largest, so a report needs the fewest calls."""


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
    assert run is not None  # no ETag sent: never a 304
    if args.follow:
        final = follow(ctx, run, stream=console.err if args.json else None)
        return finish_followed(ctx, final)
    if args.json:
        console.print(json.dumps(run, indent=2))
        return EXIT_OK
    for line in render_progress(run, width=max(40, console.width - 1)):
        console.print(line)
    if not is_finished(run):
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
    status, body = ctx.gateway.readiness()
    ctx.console.print(json.dumps(body, indent=2))
    return EXIT_OK if status == 200 else EXIT_RUN_NOT_SUCCEEDED


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

"""The ``cardflow`` CLI's client of the gateway: its pure parts, and its HTTP flow, through
the console script's ``main``, against a fake gateway (``httpx.MockTransport``) that answers
as DESIGN.md's API does. Finding the key: test_client_keyfile.py; the views:
test_client_progress_view.py."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from contracts.uploads import content_type_of
from services.gateway import cardflow, quality
from services.gateway.client import args as cli_args
from services.gateway.client import exits, messages, quality_view
from services.gateway.client import live as client_live
from tests.unit.gateway_samples import sample_backlog
from tests.unit.test_gateway_quality import analysed

URL = "http://gw.test"
KEY = "test-key"


# --- pure: arguments -----------------------------------------------------------------------


def test_global_options_come_before_or_after_the_command() -> None:
    env = {"CARDFLOW_URL": "http://env:1/"}
    before = cli_args.parse_args(["--json", "--url", "http://a:1/", "runs"], env)
    after = cli_args.parse_args(["runs", "--json", "--url", "http://a:1"], env)
    assert (before.json, before.url) == (after.json, after.url) == (True, "http://a:1")
    plain = cli_args.parse_args(["runs"], env)
    assert (plain.json, plain.url, plain.api_key) == (False, "http://env:1", None)
    assert cli_args.parse_args(["runs"], {}).url == cli_args.DEFAULT_URL


def test_run_arguments_and_request_body() -> None:
    args = cli_args.parse_args(
        [
            "run",
            "a.md",
            "b.csv",
            "--name",
            "X",
            "--stage",
            "subtasks",
            "--min-subtasks",
            "2",
            "--max-subtasks",
            "4",
            "--no-tests",
            "--no-docs",
            "--detach",
        ],
        {},
    )
    assert args.files == ["a.md", "b.csv"]
    assert (args.name, args.project, args.detach) == ("X", None, True)
    assert cli_args.run_request(args) == {
        "stage": "subtasks",
        "options": {
            "subtasks": {
                "min_per_story": 2,
                "max_per_story": 4,
                "include_tests": False,
                "include_docs": False,
            }
        },
    }
    bare = cli_args.parse_args(["run", "a.md"], {})
    assert cli_args.run_request(bare) == {"stage": "pipeline"}


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--min-subtasks", "8"], {"min_per_story": 8, "max_per_story": 8}),
        (["--min-subtasks", "2"], {"min_per_story": 2, "max_per_story": 6}),
        (["--max-subtasks", "2"], {"min_per_story": 2, "max_per_story": 2}),
    ],
)
def test_one_end_of_the_subtask_range_keeps_the_range_valid(
    flags: list[str], expected: dict[str, int]
) -> None:
    body = cli_args.run_request(cli_args.parse_args(["run", "a.md", *flags], {}))
    assert body["options"]["subtasks"] == expected


@pytest.mark.parametrize(
    "argv",
    [
        ["run"],
        ["run", "a.md", "--project", "p", "--name", "n"],
        ["run", "a.md", "--stage", "nope"],
        ["run", "a.md", "--min-subtasks", "0"],
        ["export", "p", "--format", "xml"],
        ["frobnicate"],
    ],
)
def test_usage_errors_exit_2(argv: list[str]) -> None:
    assert cardflow.main(argv, env={}) == exits.EXIT_ERROR


def test_min_above_max_is_a_usage_error() -> None:
    err = io.StringIO()
    code = cardflow.main(
        ["run", "a.md", "--min-subtasks", "5", "--max-subtasks", "2"], env={}, stderr=err
    )
    assert code == 2
    assert "--min-subtasks must not exceed --max-subtasks" in err.getvalue()


def test_project_name_and_content_type() -> None:
    assert cli_args.project_name(["docs/field-service.md", "b.txt"], None) == "field-service"
    assert cli_args.project_name(["a.md"], "  Demo  ") == "Demo"
    assert content_type_of("X.MD") == "text/markdown"
    assert content_type_of("x.csv") == "text/csv"
    assert content_type_of("x.bin") == "application/octet-stream"


@pytest.mark.parametrize(
    ("status", "code"),
    [
        ("succeeded", 0),
        ("partial", 1),
        ("failed", 1),
        ("cancelled", 1),
        (None, 1),
    ],
)
def test_exit_code_says_how_the_run_ended(status: str | None, code: int) -> None:
    assert exits.exit_code_for(status) == code


# --- pure: rendering decisions -------------------------------------------------------------


@pytest.mark.parametrize(
    ("isatty", "term", "live"),
    [
        (True, "xterm-256color", True),
        (True, "dumb", False),
        (True, None, False),
        (False, "xterm", False),
    ],
)
def test_live_view_only_on_a_real_terminal(isatty: bool, term: str | None, live: bool) -> None:
    assert client_live.use_live_view(isatty, term) is live


def run_object(
    version: int,
    status: str = "running",
    *,
    done: int = 0,
    total: int = 4,
    running: int = 0,
    failed: int = 0,
    errors: list[dict[str, Any]] | None = None,
    elapsed: float = 1.0,
    run_id: str = "run_1",
) -> dict[str, Any]:
    counts = {
        "total": total,
        "pending": total - done - running - failed,
        "running": running,
        "succeeded": done,
        "failed": failed,
        "cancelled": 0,
    }
    zero = dict.fromkeys(counts, 0)
    return {
        "id": run_id,
        "project_id": "prj_1",
        "stage": "pipeline",
        "status": status,
        "elapsed_seconds": elapsed,
        "eta_seconds": None if status == "queued" else 30,
        "counts": counts,
        "stages": {"analysis": counts, "epics": zero, "stories": zero, "subtasks": zero},
        "in_progress": [
            {"item_id": "c1", "title": "Card one", "elapsed_seconds": 3, "tokens_so_far": 50}
        ]
        if running
        else [],
        "usage": {"llm_calls": done, "input_tokens": 100, "output_tokens": 20, "cost_usd": 0.0},
        "errors": errors or [],
        "version": version,
    }


def test_live_view_redraws_in_place() -> None:
    printer = client_live.ProgressPrinter(live=True, width=80)
    first = printer.update(run_object(1, running=1))
    assert "\x1b[" not in first, "nothing to erase the first time"
    assert first.startswith("Run run_1 (pipeline): running\n")
    drawn = first.count("\n")
    second = printer.update(run_object(2, done=2))
    assert second.startswith(f"\x1b[{drawn}A\r\x1b[J")
    assert "analysis" in second
    assert printer.drawn == second.count("\n")
    # No change since the last answer: the clock moves on anyway.
    ticking = printer.update(run_object(2, done=2, elapsed=10), extra_elapsed=5)
    assert "Elapsed 15s" in ticking
    assert printer.finish(run_object(3, "succeeded", done=4)) == ""


def test_piped_view_prints_a_line_per_change_and_each_error_once() -> None:
    printer = client_live.ProgressPrinter(live=False, width=100)
    first = printer.update(run_object(1))
    assert "\x1b" not in first
    assert first.count("\n") == 1
    assert "running: analysis 0/4 done" in first
    assert "ETA 30s" in first
    # Only the clock moved: nothing new to say.
    assert printer.update(run_object(2, elapsed=5)) == ""
    error = {"item_id": "c2", "stage": "analysis", "code": "llm_timeout", "message": "slow\nLLM"}
    failed = printer.update(run_object(3, done=1, failed=1, errors=[error]))
    assert failed.splitlines() == [
        failed.splitlines()[0],
        "  error: analysis c2: llm_timeout: slow LLM",
    ]
    assert "1/4 done, 1 failed" in failed
    again = printer.update(run_object(4, done=2, failed=1, errors=[error]))
    assert "llm_timeout" not in again
    assert again.count("\n") == 1
    end = printer.finish(run_object(5, "partial", done=3, failed=1, errors=[error]))
    assert end.startswith("Run run_1 (pipeline): partial\n")


def test_redraw() -> None:
    assert client_live.redraw(0, ["a", "b"]) == "a\nb\n"
    assert client_live.redraw(2, ["c"]) == "\x1b[2A\r\x1b[Jc\n"


def test_final_report_names_the_outcome_and_where_to_look() -> None:
    run = run_object(9, "partial", done=3, failed=1)
    lines = messages.final_report(run, ["Tree: 1 epic"], cli_args.DEFAULT_URL)
    text = "\n".join(lines)
    assert "Run run_1 partial in 1s: 3/4 items done, 1 failed; 120 tokens" in text
    assert "Tree: 1 epic" in text
    assert f"{cli_args.DEFAULT_URL}/v1/runs/run_1" in text
    assert f"{cli_args.DEFAULT_URL}/v1/projects/prj_1/export?format=markdown" in text
    assert "(cardflow retry run_1)" in text
    assert "cardflow status run_1" in text
    elsewhere = "\n".join(messages.final_report(run, [], "http://gw:9"))
    assert "cardflow --url http://gw:9 export prj_1" in elsewhere


def test_hints_name_the_gateway_unless_it_is_the_default() -> None:
    assert messages.cli_command(cli_args.DEFAULT_URL) == "cardflow"
    assert messages.cli_command("http://127.0.0.1:18100") == "cardflow --url http://127.0.0.1:18100"


def test_runs_table_and_order() -> None:
    runs = [
        run_object(1, "succeeded", done=4, run_id="old") | {"created_at": "2025-01-01T10:00:00Z"},
        run_object(1, "running", run_id="new") | {"created_at": "2025-01-02T10:00:00Z"},
    ]
    ordered = messages.newest_first(runs)
    assert [r["id"] for r in ordered] == ["new", "old"]
    lines = messages.runs_table(ordered, {"prj_1": "Checkout"})
    assert lines[0].split() == ["RUN", "PROJECT", "STAGE", "STATUS", "DONE", "ELAPSED", "CREATED"]
    assert lines[1].split()[:5] == ["new", "Checkout", "pipeline", "running", "0/4"]
    assert messages.runs_table([], {})[0].startswith("no runs yet")


# --- HTTP flow against a fake gateway ------------------------------------------------------


def problem(status: int, code: str, detail: str) -> httpx.Response:
    return httpx.Response(
        status,
        json={"type": f"https://cardflow.dev/problems/{code}", "code": code, "detail": detail},
        headers={"Content-Type": "application/problem+json"},
    )


class FakeGateway:
    """Answers the CLI's calls as the gateway does; ``polls`` are the answers to successive
    ``GET /v1/runs/{id}`` (a dict: 200 with that run; None: 304; an exception: raised)."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.upload_answers: list[httpx.Response] = []
        self.polls: list[dict[str, Any] | BaseException | None] = []
        self.created = run_object(1, "queued")
        self.actions: dict[str, httpx.Response] = {}
        self.run_exists = True
        self.projects = [{"id": "prj_1", "name": "field-service"}]
        self.runs_of: dict[str, list[dict[str, Any]]] = {}

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def calls(self, method: str, fragment: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method and fragment in r.url.path]

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("authorization") != f"Bearer {KEY}":
            return problem(401, "unauthorized", "The API key is not valid.")
        path, method = request.url.path, request.method
        if method == "POST" and path == "/v1/projects":
            name = json.loads(request.content)["name"]
            return httpx.Response(201, json={"id": "prj_1", "name": name})
        if method == "POST" and path.endswith("/uploads"):
            return self.upload_answers.pop(0)
        if method == "POST" and path.endswith("/runs"):
            return httpx.Response(
                202,
                json=self.created,
                headers={"Location": "/v1/runs/run_1", "ETag": '"v1"'},
            )
        if method == "GET" and path.startswith("/v1/runs/"):
            return self.poll(request)
        if method == "POST" and path.startswith("/v1/runs/"):
            action = path.rsplit("/", 1)[-1]
            return self.actions.get(action) or problem(404, "not_found", "Not Found")
        if method == "GET" and path == "/v1/projects":
            return httpx.Response(200, json={"projects": self.projects})
        if method == "GET" and path.endswith("/subtasks"):
            return httpx.Response(200, json=backlog())
        if method == "GET" and path.endswith("/runs"):
            project = path.split("/")[3]
            return httpx.Response(200, json={"runs": self.runs_of.get(project, [])})
        if method == "GET" and path.endswith("/export"):
            fmt = request.url.params["format"]
            return httpx.Response(200, text=f"backlog as {fmt}\n")
        if method == "GET" and path.startswith("/v1/projects/"):
            return httpx.Response(200, json=self.projects[0])
        return problem(404, "not_found", "Not Found")

    def poll(self, request: httpx.Request) -> httpx.Response:
        if not self.run_exists:
            return problem(404, "not_found", "No run run_x.")
        answer = self.polls.pop(0) if self.polls else self.created
        if isinstance(answer, BaseException):
            raise answer
        if answer is None:
            etag = request.headers["if-none-match"]
            return httpx.Response(304, headers={"ETag": etag, "Cache-Control": "no-store"})
        etag = f'"v{answer["version"]}"'
        return httpx.Response(200, json=answer, headers={"ETag": etag})


def backlog() -> dict[str, Any]:
    subtask = {"title": "Write it"}
    return {
        "epics": [
            {
                "epic": {"title": "Scheduling"},
                "stories": [
                    {"story": {"title": "Book a visit"}, "subtasks": [subtask, subtask]},
                    {"story": {"title": "Move a visit"}, "subtasks": [subtask]},
                ],
            }
        ]
    }


class Terminal(io.StringIO):
    """stdout as a terminal, or not."""

    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty
        self.encoding_name = "utf-8"

    def isatty(self) -> bool:
        return self.tty

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self.encoding_name


@pytest.fixture
def gateway() -> FakeGateway:
    return FakeGateway()


@pytest.fixture
def docs(tmp_path: Path) -> list[Path]:
    first, second = tmp_path / "field-service.md", tmp_path / "second.md"
    first.write_text("# A\n\nText.\n")
    second.write_text("# B\n\nMore.\n")
    return [first, second]


def call(
    gateway: FakeGateway, argv: list[str], *, tty: bool = False, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    out, err = Terminal(tty), io.StringIO()
    base = {"CARDFLOW_URL": URL, "CARDFLOW_API_KEY": KEY, "TERM": "xterm"}
    code = cardflow.main(
        argv,
        env=base if env is None else env,
        transport=gateway.transport,
        stdout=out,
        stderr=err,
        cwd=Path("/nonexistent"),
        sleep=lambda _s: None,
    )
    return code, out.getvalue(), err.getvalue()


def test_run_uploads_follows_with_long_poll_and_etag_and_ends_with_the_tree(
    gateway: FakeGateway, docs: list[Path]
) -> None:
    gateway.upload_answers = [
        httpx.Response(202, json={"upload_id": "u1", "cards": ["c1", "c2", "c3"]}),
        httpx.Response(202, json={"upload_id": "u2", "cards": ["c4"]}),
    ]
    gateway.polls = [
        None,
        run_object(2, running=1),
        None,
        None,
        run_object(5, done=3, running=1),
        run_object(6, "succeeded", done=4, elapsed=12),
    ]
    code, out, err = call(gateway, ["run", *map(str, docs)])

    assert code == 0, err
    assert "field-service.md → 3 cards" in out
    assert "second.md → 1 cards" in out
    assert json.loads(gateway.calls("POST", "/v1/projects")[0].content) == {"name": "field-service"}
    uploads = gateway.calls("POST", "/uploads")
    assert [b'name="file"; filename="field-service.md"' in r.content for r in uploads] == [
        True,
        False,
    ]
    start = gateway.calls("POST", "/runs")[0]
    assert len(start.headers["idempotency-key"]) == 36  # a uuid4
    assert json.loads(start.content) == {"stage": "pipeline"}

    polls = gateway.calls("GET", "/v1/runs/run_1")
    assert all(p.url.params["wait"] == "10" for p in polls)
    # Each poll names the version last seen; a 304 keeps it.
    assert [p.headers["if-none-match"] for p in polls] == [
        '"v1"',
        '"v1"',
        '"v2"',
        '"v2"',
        '"v2"',
        '"v5"',
    ]
    assert "\x1b[" not in out, "piped: no cursor movement"
    assert "[1s] queued" in out
    assert "running: analysis 3/4 done, 1 running" in out
    assert "Run run_1 succeeded in 12s: 4/4 items done" in out
    assert "field-service: 1 epic, 2 stories, 3 subtasks" in out
    assert "└─ Scheduling (2 stories, 3 subtasks)" in out
    assert f"{URL}/v1/runs/run_1" in out
    assert f"{URL}/v1/projects/prj_1/export?format=markdown" in out


def test_run_on_a_terminal_redraws_in_place(gateway: FakeGateway, docs: list[Path]) -> None:
    gateway.upload_answers = [httpx.Response(202, json={"upload_id": "u1", "cards": ["c1"]})]
    gateway.polls = [run_object(2, running=1), run_object(3, "succeeded", done=4)]
    code, out, _ = call(gateway, ["run", str(docs[0]), "--name", "Mine"], tty=True)
    assert code == 0
    assert out.count("\x1b[J") == 2
    assert "Mine: 1 epic" in out


def test_partial_run_exits_1(gateway: FakeGateway, docs: list[Path]) -> None:
    gateway.upload_answers = [httpx.Response(202, json={"upload_id": "u1", "cards": ["c1"]})]
    error = {"item_id": "c1", "code": "llm_invalid_output", "message": "bad JSON"}
    gateway.polls = [run_object(2, "partial", done=3, failed=1, errors=[error])]
    code, out, _ = call(gateway, ["run", str(docs[0])])
    assert code == 1
    assert "error: c1: llm_invalid_output: bad JSON" in out
    assert f"cardflow --url {URL} retry run_1" in out


def test_upload_error_keeps_earlier_uploads_and_starts_no_run(
    gateway: FakeGateway, docs: list[Path]
) -> None:
    gateway.upload_answers = [
        httpx.Response(202, json={"upload_id": "u1", "cards": ["c1", "c2"]}),
        problem(415, "unsupported_media_type", "'.pdf' files are not accepted."),
    ]
    code, out, err = call(gateway, ["run", *map(str, docs)])
    assert code == 2
    assert "field-service.md → 2 cards" in out
    assert "second.md: unsupported_media_type: '.pdf' files are not accepted." in err
    assert "kept: project prj_1 with 2 cards" in err
    assert "--project prj_1" in err
    assert not gateway.calls("POST", "/runs")
    assert not gateway.calls("DELETE", "/")


def test_missing_file_is_a_usage_error_before_any_request(gateway: FakeGateway) -> None:
    code, _, err = call(gateway, ["run", "/nonexistent/prd.md"])
    assert code == 2
    assert "no such file: /nonexistent/prd.md" in err
    assert gateway.requests == []


class LosingGateway(FakeGateway):
    """Loses the first ``lost`` answers to ``POST .../runs`` (no answer at all)."""

    def __init__(self, lost: int) -> None:
        super().__init__()
        self.lost = lost

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith("/runs") and self.lost:
            self.lost -= 1
            self.requests.append(request)
            raise httpx.ConnectError("connection reset", request=request)
        return super().handle(request)


@pytest.mark.parametrize(("lost", "code"), [(2, 0), (3, 2)])
def test_starting_a_run_is_retried_with_the_same_idempotency_key(
    docs: list[Path], lost: int, code: int
) -> None:
    gateway = LosingGateway(lost)
    gateway.upload_answers = [httpx.Response(202, json={"upload_id": "u1", "cards": ["c1"]})]
    slept: list[float] = []
    err = io.StringIO()
    exit_code = cardflow.main(
        ["run", str(docs[0]), "--detach"],
        env={"CARDFLOW_URL": URL, "CARDFLOW_API_KEY": KEY},
        transport=gateway.transport,
        stdout=io.StringIO(),
        stderr=err,
        cwd=Path("/nonexistent"),
        sleep=slept.append,
    )
    starts = gateway.calls("POST", "/runs")
    assert exit_code == code, err.getvalue()
    assert len(starts) == 3, "three tries, then the gateway is unreachable"
    assert len({r.headers["idempotency-key"] for r in starts}) == 1
    assert slept == [1.0, 2.0]
    if code:
        assert f"cannot reach the gateway at {URL}" in err.getvalue()


def test_run_with_project_uses_it_and_detach_returns_at_once(
    gateway: FakeGateway, docs: list[Path]
) -> None:
    gateway.upload_answers = [httpx.Response(202, json={"upload_id": "u1", "cards": ["c1"]})]
    code, out, _ = call(gateway, ["run", str(docs[0]), "--project", "prj_1", "--detach"])
    assert code == 0
    assert not [r for r in gateway.requests if r.method == "POST" and r.url.path == "/v1/projects"]
    assert gateway.calls("GET", "/v1/projects/prj_1")
    assert "run run_1 started" in out
    assert f"cardflow --url {URL} status run_1 --follow" in out
    assert not gateway.calls("GET", "/v1/runs/")


def test_ctrl_c_detaches_without_cancelling(gateway: FakeGateway, docs: list[Path]) -> None:
    gateway.upload_answers = [httpx.Response(202, json={"upload_id": "u1", "cards": ["c1"]})]
    gateway.polls = [run_object(2, running=1), KeyboardInterrupt()]
    # The default gateway URL: the hint is the plain command.
    code, _, err = call(gateway, ["run", str(docs[0])], env={"CARDFLOW_API_KEY": KEY})
    assert code == 130
    assert "detached; the run goes on: cardflow status run_1" in err
    assert not gateway.calls("POST", "/cancel")


def test_status_once_and_followed(gateway: FakeGateway) -> None:
    gateway.polls = [run_object(3, running=1)]
    code, out, _ = call(gateway, ["status", "run_1"])
    assert code == 0
    assert out.startswith("Run run_1 (pipeline): running")
    assert f"cardflow --url {URL} status run_1 --follow" in out
    assert "wait" not in gateway.calls("GET", "/v1/runs/run_1")[0].url.params

    gateway.polls = [run_object(3, running=1), None, run_object(4, "failed", failed=4)]
    code, out, _ = call(gateway, ["status", "run_1", "--follow"])
    assert code == 1
    assert "Run run_1 failed" in out
    assert "field-service: 1 epic" in out


def test_status_json(gateway: FakeGateway) -> None:
    gateway.polls = [run_object(3)]
    code, out, _ = call(gateway, ["status", "run_1", "--json"])
    assert code == 0
    assert json.loads(out)["version"] == 3


def test_follow_survives_a_short_gateway_outage(gateway: FakeGateway) -> None:
    down = httpx.ConnectError("refused")
    gateway.polls = [run_object(3), down, down, run_object(4, "succeeded", done=4)]
    code, _, _ = call(gateway, ["status", "run_1", "--follow"])
    assert code == 0


@pytest.mark.parametrize("action", ["cancel", "retry"])
@pytest.mark.parametrize("status", [404, 405])
def test_cancel_and_retry_on_a_gateway_without_them(
    gateway: FakeGateway, action: str, status: int
) -> None:
    gateway.actions[action] = problem(status, "not_found", "Not Found")
    code, _, err = call(gateway, [action, "run_1"])
    assert code == 2
    assert f"does not support `{action}` yet" in err
    assert gateway.calls("POST", f"/v1/runs/run_1/{action}")


def test_cancel_of_an_unknown_run_says_so(gateway: FakeGateway) -> None:
    gateway.run_exists = False
    code, _, err = call(gateway, ["cancel", "run_x"])
    assert code == 2
    assert "no run run_x" in err
    assert "does not support" not in err


def test_cancel_and_retry_when_supported(gateway: FakeGateway) -> None:
    gateway.actions["cancel"] = httpx.Response(202, json=run_object(7, "cancelling"))
    gateway.actions["retry"] = httpx.Response(202, json=run_object(1, "queued", run_id="run_2"))
    default_url = {"CARDFLOW_API_KEY": KEY}
    assert call(gateway, ["cancel", "run_1"], env=default_url)[:2] == (
        0,
        "cancel: run run_1 is cancelling: cardflow status run_1\n",
    )
    code, out, _ = call(gateway, ["retry", "run_1"], env=default_url)
    assert (code, out) == (0, "retrying run run_1 as run run_2 (queued): cardflow status run_2\n")


def test_runs_lists_every_project_newest_first(gateway: FakeGateway) -> None:
    gateway.projects = [{"id": "p1", "name": "One"}, {"id": "p2", "name": "Two"}]
    gateway.runs_of = {
        "p1": [run_object(1, run_id="r1") | {"project_id": "p1", "created_at": "2025-01-01T00:00"}],
        "p2": [run_object(1, run_id="r2") | {"project_id": "p2", "created_at": "2025-02-01T00:00"}],
    }
    code, out, _ = call(gateway, ["runs"])
    assert code == 0
    rows = out.splitlines()
    assert [row.split()[:2] for row in rows[1:]] == [["r2", "Two"], ["r1", "One"]]
    code, out, _ = call(gateway, ["runs", "--json"])
    assert [r["id"] for r in json.loads(out)["runs"]] == ["r2", "r1"]


def test_export_to_a_file_and_to_stdout(gateway: FakeGateway, tmp_path: Path) -> None:
    target = tmp_path / "backlog.csv"
    code, _, err = call(gateway, ["export", "prj_1", "--format", "csv", "-o", str(target)])
    assert code == 0
    assert target.read_text() == "backlog as csv\n"
    assert f"wrote {target}" in err
    assert call(gateway, ["export", "prj_1"])[:2] == (0, "backlog as markdown\n")


def test_unreachable_gateway(gateway: FakeGateway) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    err = io.StringIO()
    code = cardflow.main(
        ["runs"],
        env={"CARDFLOW_URL": URL},
        transport=httpx.MockTransport(refuse),
        stdout=io.StringIO(),
        stderr=err,
        cwd=Path("/nonexistent"),
    )
    assert code == 2
    assert f"cannot reach the gateway at {URL} (is it running? `make up`)" in err.getvalue()


def test_401_names_where_the_key_came_from(gateway: FakeGateway, tmp_path: Path) -> None:
    env = {"CARDFLOW_URL": URL, "CARDFLOW_API_KEY": "wrong"}
    code, _, err = call(gateway, ["runs"], env=env)
    assert code == 2
    assert "API key is missing or invalid" in err
    assert "CARDFLOW_API_KEY" in err

    env = {"CARDFLOW_URL": URL, "CARDFLOW_STATE_DIR": str(tmp_path / "none")}
    code, _, err = call(gateway, ["runs"], env=env)
    assert code == 2
    assert "none was found" in err
    assert str(tmp_path / "none" / "api-key") in err


def test_health_needs_no_key(gateway: FakeGateway) -> None:
    def ready(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/readyz"
        return httpx.Response(503, json={"status": "unavailable", "broker": False})

    out = io.StringIO()
    code = cardflow.main(
        ["health"],
        env={"CARDFLOW_URL": URL},
        transport=httpx.MockTransport(ready),
        stdout=out,
        stderr=io.StringIO(),
        cwd=Path("/nonexistent"),
    )
    assert code == 1
    assert json.loads(out.getvalue())["broker"] is False


# --- quality and questions ---------------------------------------------------------------------


def quality_report() -> dict[str, Any]:
    """A report as the gateway answers it: built by the gateway's own quality module."""
    nodes = sample_backlog().epics
    stories = [c.story for n in nodes for c in n.stories]
    subtasks = [s for n in nodes for c in n.stories for s in c.subtasks]
    report = quality.build_report("prj_1", [analysed("card_1")], [], stories, subtasks)
    return report.model_dump(mode="json")


class QualityGateway(FakeGateway):
    def __init__(self, questions: list[dict[str, Any]]) -> None:
        super().__init__()
        self.questions = questions

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/v1/projects/prj_1/quality":
            self.requests.append(request)
            return httpx.Response(200, json=quality_report())
        if path == "/v1/projects/prj_1/questions":
            self.requests.append(request)
            offset, limit = int(request.url.params["offset"]), int(request.url.params["limit"])
            end = offset + limit
            return httpx.Response(
                200,
                json={
                    "questions": self.questions[offset:end],
                    "total": len(self.questions),
                    "next_offset": end if end < len(self.questions) else None,
                },
            )
        if path.endswith(("/quality", "/questions")):
            self.requests.append(request)
            return problem(404, "not_found", "No project with id 'nope'.")
        return super().handle(request)


def test_quality_prints_counts_and_findings() -> None:
    gateway = QualityGateway([])
    code, out, _ = call(gateway, ["quality", "prj_1"])
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "Quality of field-service (prj_1)"
    # card_1:R1 is cited by the sample's stories; R2 is the markup one, cited by none.
    assert lines[1].startswith("coverage: 50.0 %, 1 of 2 of the author's requirements")
    assert "uncovered requirements: 1" in lines
    assert "stories without a testable criterion: 1" in lines
    assert any(line.startswith("  st_b1  ") and "no acceptance criteria" in line for line in lines)
    assert "junk (markup 1): 1" in lines
    assert "open questions: 2" in lines
    code, out, _ = call(gateway, ["quality", "prj_1", "--json"])
    assert json.loads(out)["coverage"]["share"] == 0.5
    assert gateway.calls("GET", "/quality")[0].url.params["limit"] == "200"


def test_quality_lists_are_cut_with_a_count_of_the_rest() -> None:
    report = quality_report()
    report["untestable"] = [
        {"story_id": f"s{n}", "title": f"Story {n}", "reason": "no acceptance criteria"}
        for n in range(25)
    ]
    report["counts"]["stories_untestable"] = 40
    lines = quality_view.quality_lines(report)
    listed = [line for line in lines if line.startswith("  s") and "Story" in line]
    assert len(listed) == quality_view.SHOWN_PER_LIST
    assert f"  ... {40 - quality_view.SHOWN_PER_LIST} more (--json for the lists)" in lines


def test_questions_reads_every_page_and_groups_by_card() -> None:
    asked = [
        {
            "card_id": f"c{n // 150}",
            "card_title": f"Card {n // 150}",
            "text": f"Question {n}?",
            "source_span": {"start": n, "end": n + 5} if n % 2 else None,
        }
        for n in range(450)
    ]
    gateway = QualityGateway(asked)
    code, out, _ = call(gateway, ["questions", "prj_1"])
    assert code == 0
    assert [r.url.params["offset"] for r in gateway.calls("GET", "/questions")] == [
        "0",
        "200",
        "400",
    ]
    lines = out.splitlines()
    assert lines[0] == "450 open questions"
    assert lines.count("Card 1 (card c1)") == 1
    assert "  - Question 1?  [characters 1-6]" in lines
    assert "  - Question 0?  [no span]" in lines
    code, out, _ = call(gateway, ["questions", "prj_1", "--json"])
    assert len(json.loads(out)["questions"]) == 450
    assert call(QualityGateway([]), ["questions", "prj_1"])[1] == "no open questions\n"


def test_quality_of_an_unknown_project_is_an_api_error() -> None:
    code, _, err = call(QualityGateway([]), ["quality", "nope"])
    assert code == exits.EXIT_ERROR
    assert "not_found" in err

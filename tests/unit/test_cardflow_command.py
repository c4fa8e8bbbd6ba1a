"""The ``cardflow`` console script (``services.gateway.cardflow``): one parser for every
command, ``dlq`` answered by the runtime's dead-letter command, everything else by the
client of the gateway's API."""

from __future__ import annotations

import argparse
import io
import tomllib
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.gateway import cardflow
from services.gateway.client import args as client_args
from services.gateway.client import main as client_main
from services.runtime.dlq import command as dlq_cli

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


class Recorder:
    """Stands in for one program's entry: records what it was given, answers ``code``."""

    def __init__(self, code: int) -> None:
        self.code = code
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> int:
        self.calls.append((args, kwargs))
        return self.code


@pytest.fixture
def programs(monkeypatch: pytest.MonkeyPatch) -> tuple[Recorder, Recorder]:
    """(the dlq command's run, the client's run), each answering its own exit code."""
    dlq, client = Recorder(41), Recorder(42)
    monkeypatch.setattr(dlq_cli, "run", dlq)
    monkeypatch.setattr(client_main, "run", client)
    return dlq, client


def test_dlq_goes_to_the_runtime_command_with_the_streams_and_environment(
    programs: tuple[Recorder, Recorder],
) -> None:
    dlq, client = programs
    out, err, env = io.StringIO(), io.StringIO(), {"CARDFLOW_KAFKA_TOPIC_PREFIX": "x."}
    code = cardflow.main(["dlq", "list", "--topic", "t"], env=env, stdout=out, stderr=err)
    assert code == 41
    assert client.calls == []
    [(args, kwargs)] = dlq.calls
    parsed, given_env, given_out, given_err = args
    assert isinstance(parsed, argparse.Namespace)
    assert (parsed.command, parsed.dlq_command, parsed.topic) == ("dlq", "list", ["t"])
    assert (given_env, given_out, given_err, kwargs) == (env, out, err, {})


def test_every_other_command_goes_to_the_client_with_its_test_seams(
    programs: tuple[Recorder, Recorder],
) -> None:
    dlq, client = programs
    out, err = io.StringIO(), io.StringIO()
    transport = httpx.MockTransport(lambda request: httpx.Response(500))
    cwd = Path("/somewhere")

    def sleep(_seconds: float) -> None:
        return None

    code = cardflow.main(
        ["runs", "--json", "--url", "http://gw:1/"],
        env={},
        transport=transport,
        stdout=out,
        stderr=err,
        cwd=cwd,
        sleep=sleep,
    )
    assert code == 42
    assert dlq.calls == []
    [((parsed,), kwargs)] = client.calls
    assert (parsed.command, parsed.json, parsed.url) == ("runs", True, "http://gw:1")
    assert kwargs == {
        "env": {},
        "stdout": out,
        "stderr": err,
        "transport": transport,
        "cwd": cwd,
        "sleep": sleep,
    }


@pytest.mark.parametrize("argv", [["--help"], ["frobnicate"], ["dlq"], ["run"]])
def test_help_and_usage_errors_reach_neither_program(
    programs: tuple[Recorder, Recorder], argv: list[str]
) -> None:
    dlq, client = programs
    code = cardflow.main(argv, env={}, stdout=io.StringIO(), stderr=io.StringIO())
    assert code == (0 if argv == ["--help"] else 2)
    assert dlq.calls == client.calls == []


def test_help_lists_the_client_s_commands_and_dlq(capsys: pytest.CaptureFixture[str]) -> None:
    assert cardflow.main(["--help"], env={}) == 0
    listed = capsys.readouterr().out
    for command in ("run", "status", "runs", "export", "quality", "cancel", "health", "dlq"):
        assert f"    {command} " in listed, command
    assert "talks to Kafka, not to the gateway" in " ".join(listed.split())


def test_the_client_alone_knows_no_dlq() -> None:
    # dlq joins only in the front: the client's own parser refuses it.
    with pytest.raises(SystemExit):
        client_args.parse_args(["dlq", "list"], {})


def test_the_console_script_is_the_front() -> None:
    scripts = tomllib.loads(PYPROJECT.read_text())["project"]["scripts"]
    assert scripts["cardflow"] == "services.gateway.cardflow:main"

"""deploy/local/stack.py as a user runs it: `up` brings a broker and the gateway to ready, a
second `up` starts nothing, `down` leaves no process and no listening port behind."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import infra

pytestmark = [pytest.mark.integration, pytest.mark.kafka, pytest.mark.slow, pytest.mark.e2e]

STACK = infra.REPO_ROOT / "deploy" / "local" / "stack.py"


class Stack:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        kafka, controller, gateway = infra.free_ports(3)
        self.ports = {"kafka": kafka, "controller": controller, "gateway": gateway}
        # Nothing from the caller's CARDFLOW_* settings (or an external broker) may leak in:
        # the stack under test must start its own broker on its own ports.
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("CARDFLOW_") and k != "KAFKA_BOOTSTRAP_SERVERS"
        }
        self.env = {
            **base,
            "CARDFLOW_STATE_DIR": str(state_dir),
            "CARDFLOW_KAFKA_PORT": str(kafka),
            "CARDFLOW_KAFKA_CONTROLLER_PORT": str(controller),
            "CARDFLOW_GATEWAY_HOST": "127.0.0.1",
            "CARDFLOW_GATEWAY_PORT": str(gateway),
        }

    def run(self, *args: str, timeout_s: float = 240) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(STACK), *args],
            env=self.env,
            cwd=infra.REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )

    def check(self, *args: str) -> str:
        done = self.run(*args)
        assert done.returncode == 0, (
            f"stack.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        )
        return done.stdout

    def recorded(self) -> dict[str, int]:
        path = self.state_dir / "processes.json"
        if not path.exists():
            return {}
        return {p["name"]: p["pid"] for p in json.loads(path.read_text())["processes"]}


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    stack = Stack(tmp_path / "state")
    try:
        yield stack
    finally:
        # A failed assertion must not leave a broker running: stop what is still recorded, and
        # if `down` itself is broken, kill those groups (only the ones this stack recorded).
        leftover = stack.recorded()
        if leftover:
            stack.run("down", timeout_s=120)
        for pid in leftover.values():
            if _running(pid):
                os.killpg(pid, signal.SIGKILL)


def _running(pid: int) -> bool:
    """Alive, as opposed to absent or a zombie: in a container whose pid 1 does not reap
    orphans, a stopped process stays in /proc as a zombie (state Z); it has exited all the same."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as response:
        return int(response.status)


def test_up_is_idempotent_and_down_leaves_nothing(stack: Stack) -> None:
    out = stack.check("up")
    pids = stack.recorded()
    assert set(pids) == {"kafka", "analysis", "epics", "stories", "subtasks", "gateway"}, out
    assert all(_running(pid) for pid in pids.values())
    gateway = f"http://127.0.0.1:{stack.ports['gateway']}"
    assert gateway in out
    assert _get(f"{gateway}/readyz") == 200

    key_file = stack.state_dir / "api-key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    key = key_file.read_text().strip()
    assert key in out

    again = stack.check("up")
    assert stack.recorded() == pids, "a second `up` must not start anything"
    assert again.count("already running") == 6, again
    assert key_file.read_text().strip() == key

    status = stack.check("status")
    assert all(str(pid) in status for pid in pids.values())

    stack.check("down")
    assert not [name for name, pid in pids.items() if _running(pid)]
    assert not [name for name, port in stack.ports.items() if _listening(port)]
    assert stack.recorded() == {}
    assert "nothing to stop" in stack.check("down")


def test_a_local_model_runs_beside_the_stack_and_every_stage_points_at_it(stack: Stack) -> None:
    """`make up LLM=local`: llama-server is one more recorded process, the stage services
    are started against it, and `down` stops it with the rest."""
    (llama_port,) = infra.free_ports(1)
    stack.env.update(
        {
            "CARDFLOW_LOCAL_LLM": "1",
            "CARDFLOW_LLAMA_PORT": str(llama_port),
            "CARDFLOW_STACK_ONLY": "kafka,llama,analysis",
        }
    )
    out = stack.check("up")
    assert f"http://127.0.0.1:{llama_port}/v1" in out
    pids = stack.recorded()
    assert set(pids) == {"kafka", "llama", "analysis"}
    assert _get(f"http://127.0.0.1:{llama_port}/health") == 200
    raw = Path(f"/proc/{pids['analysis']}/environ").read_bytes()
    environ = dict(item.decode().partition("=")[::2] for item in raw.split(b"\0") if item)
    assert environ["CARDFLOW_LLM_BASE_URL"] == f"http://127.0.0.1:{llama_port}/v1"
    assert environ["CARDFLOW_LLM_MODEL"].endswith(".gguf")
    assert environ["CARDFLOW_LLM_MAX_IN_FLIGHT"] == "2"
    stack.check("down")
    assert not _listening(llama_port)
    assert stack.recorded() == {}

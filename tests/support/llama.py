"""A real OpenAI-compatible server with a real model for the tests: llama.cpp's
``llama-server`` with Gemma 3 270M, both from ``deploy/llama/fetch.py`` (built and fetched
once into the cache outside the checkout), started on a free port of 127.0.0.1."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.infra import free_port

ROOT = Path(__file__).resolve().parents[2]
FETCH = ROOT / "deploy" / "llama" / "fetch.py"
FETCH_TIMEOUT_S = 40 * 60
START_TIMEOUT_S = 120
_METRIC = re.compile(r"^(llamacpp:[a-z_]+)(?:\{[^}]*\})? ([0-9.eE+-]+)$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Fetched:
    server: Path
    model: Path
    version: str


def fetch() -> Fetched:
    """The cached server and model (building and fetching them the first time)."""
    done = subprocess.run(
        [sys.executable, str(FETCH)], capture_output=True, text=True, timeout=FETCH_TIMEOUT_S
    )
    if done.returncode != 0:
        raise RuntimeError(f"deploy/llama/fetch.py failed:\n{done.stderr[-4000:]}")
    paths = json.loads(done.stdout.strip().splitlines()[-1])
    return Fetched(Path(paths["server"]), Path(paths["model"]), paths["version"])


@dataclass
class LlamaServer:
    fetched: Fetched
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    context_tokens: int
    slots: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def model_name(self) -> str:
        return self.fetched.model.name

    def metrics(self) -> dict[str, float]:
        """The server's Prometheus counters (``--metrics``), by name."""
        text = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).text
        return {name: float(value) for name, value in _METRIC.findall(text)}

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start(fetched: Fetched, workdir: Path, *, context_tokens: int, slots: int) -> LlamaServer:
    """``context_tokens`` in all, shared by ``slots`` parallel requests; waits for /health."""
    port = free_port()
    log = workdir / "llama-server.log"
    command = [
        str(fetched.server),
        "-m", str(fetched.model),
        "--host", "127.0.0.1",
        "--port", str(port),
        "-c", str(context_tokens),
        "-np", str(slots),
        "--threads", "2",
        "--metrics",
        "--no-webui",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    server = LlamaServer(fetched, port, process, log, context_tokens, slots)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"llama-server exited ({process.returncode}):\n{server.log_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"llama-server not healthy in {START_TIMEOUT_S} s:\n{server.log_text()}")

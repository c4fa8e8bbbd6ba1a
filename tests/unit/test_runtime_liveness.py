"""A stage service's /livez: its metrics server runs in a thread of its own, so it keeps
answering while the event loop is blocked. /livez reads the loop's pulse instead, so the
orchestrator restarts a process whose loop is stuck."""

from __future__ import annotations

import asyncio
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from services.runtime.metrics import LIVENESS_PATH, LoopPulse, serve_metrics
from tests.support.infra import free_port
from tests.support.wait import until_sync


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


class LoopThread:
    """An event loop in a thread, beating a pulse, that the test can block."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.pulse = LoopPulse()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.loop.run_until_complete(self.pulse.run(self._stop))

    def __enter__(self) -> LoopThread:
        self._thread.start()
        return self

    def block(self, released: threading.Event) -> None:
        """The loop runs a blocking wait (as a handler calling sync I/O would)."""
        self.loop.call_soon_threadsafe(lambda: released.wait(30))

    def __exit__(self, *_: object) -> None:
        self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)
        self.loop.close()


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    with LoopThread() as running:
        yield running


def test_livez_says_503_while_the_loop_is_blocked_and_200_again_once_it_runs(
    loop_thread: LoopThread,
) -> None:
    port = free_port()
    stop = serve_metrics(port, "127.0.0.1", pulse=loop_thread.pulse, stall_limit_s=1.5)
    base = f"http://127.0.0.1:{port}"
    released = threading.Event()
    try:
        assert fetch(base + LIVENESS_PATH) == (200, "ok\n")
        loop_thread.block(released)
        status, body = until_sync(
            lambda: (r := fetch(base + LIVENESS_PATH))[0] == 503 and r,
            timeout=15,
            what="/livez to notice the blocked loop",
        )
        assert "event loop stalled" in body
        # The metrics keep answering meanwhile: the stall is visible on the dashboard too.
        status, metrics = fetch(base + "/metrics")
        assert status == 200
        assert "cardflow_event_loop_pulse_age_seconds" in metrics
        released.set()
        until_sync(
            lambda: fetch(base + LIVENESS_PATH)[0] == 200,
            timeout=15,
            what="/livez once the loop runs again",
        )
    finally:
        released.set()
        stop()


def test_without_a_pulse_livez_says_the_process_serves() -> None:
    port = free_port()
    stop = serve_metrics(port, "127.0.0.1")
    try:
        assert fetch(f"http://127.0.0.1:{port}{LIVENESS_PATH}") == (200, "ok\n")
    finally:
        stop()

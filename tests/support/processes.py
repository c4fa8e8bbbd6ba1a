"""Running services as real OS processes, so faults can be injected with real signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.support.wait import until_sync

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class ServiceProcess:
    """A ``python -m <module>`` child with its own log file and process group."""

    module: str
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module],
            cwd=REPO_ROOT,
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no cleanup, no flush, no offset commit; as a crash or OOM kill."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self, timeout: float = 40) -> int:
        """SIGTERM and wait for a graceful exit; returns the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
            raise AssertionError(f"{self.module} ignored SIGTERM for {timeout}s") from None

    def wait_exit(self, timeout: float) -> int:
        """The exit code of a process expected to stop by itself (SIGKILL after ``timeout``)."""
        assert self.process is not None
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
            raise AssertionError(
                f"{self.module} still running after {timeout}s:\n{self.log_tail()}"
            ) from None

    def log_offset(self) -> int:
        """Where the log ends now: a restart appends, so "since" reads only the new part."""
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def log_since(self, offset: int) -> str:
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as handle:
            handle.seek(offset)
            return handle.read().decode(errors="replace")

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def wait_for_file(self, path: Path, timeout: float) -> None:
        def reached() -> bool:
            if not self.alive():
                raise AssertionError(f"{self.module} exited early:\n{self.log_tail()}")
            return path.exists()

        until_sync(reached, timeout=timeout, what=f"{self.module} to reach {path.name}")


def service_env(
    *,
    name: str,
    bootstrap: str,
    database_url: str,
    state_dir: Path,
    extra: Mapping[str, str] = (),  # type: ignore[assignment]
) -> dict[str, str]:
    return {
        "CARDFLOW_SERVICE_NAME": name,
        "CARDFLOW_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "CARDFLOW_DATABASE_URL": database_url,
        "CARDFLOW_STATE_DIR": str(state_dir),
        "CARDFLOW_LOG_FORMAT": "text",
        "CARDFLOW_LOG_LEVEL": "INFO",
        "CARDFLOW_OUTBOX_POLL_INTERVAL_S": "0.05",
        # The broker notices a SIGKILLed member after this long; its minimum is 6 s.
        "CARDFLOW_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "CARDFLOW_KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
        **dict(extra),
    }

"""The whole pipeline as OS processes: four stage services and the gateway, each with its
own database, on a real broker, isolated from other stacks by a topic prefix."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.infra import free_port
from tests.support.processes import ServiceProcess, service_env
from tests.support.wait import until_sync

STAGES = ("analysis", "epics", "stories", "subtasks")
SERVICES = (*STAGES, "gateway")
API_KEY = "e2e-bootstrap-key"
START_TIMEOUT_S = 90


@dataclass
class PipelineStack:
    bootstrap: str
    database_urls: Mapping[str, str]
    workdir: Path
    env: Mapping[str, str] = field(default_factory=dict)
    prefix: str = field(default_factory=lambda: f"e2e-{uuid.uuid4().hex[:8]}.")
    port: int = field(default_factory=free_port)
    metrics_ports: dict[str, int] = field(
        default_factory=lambda: {stage: free_port() for stage in STAGES}
    )
    """Each stage service's /metrics port (the gateway serves /metrics on ``port``)."""
    processes: dict[str, ServiceProcess] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _process(self, name: str, instance: str | None = None) -> ServiceProcess:
        """``instance`` makes a further replica of ``name``: same service name, database and
        groups, its own instance id and log."""
        replica = (
            {"CARDFLOW_INSTANCE_ID": f"{name}-{instance}", "CARDFLOW_METRICS_PORT": "0"}
            if instance
            else {}
        )
        metrics_port = self.metrics_ports.get(name)
        metrics = {"CARDFLOW_METRICS_PORT": str(metrics_port)} if metrics_port else {}
        log_name = f"{name}-{instance}" if instance else name
        env = service_env(
            name=name,
            bootstrap=self.bootstrap,
            database_url=self.database_urls[name],
            state_dir=self.workdir / "state",
            extra={
                "CARDFLOW_KAFKA_TOPIC_PREFIX": self.prefix,
                "CARDFLOW_GATEWAY_PORT": str(self.port),
                "CARDFLOW_BOOTSTRAP_API_KEY": API_KEY,
                "CARDFLOW_WORK_POLL_INTERVAL_S": "0.1",
                "CARDFLOW_WORK_HEARTBEAT_S": "0.5",
                # A test's SIGTERM must not wait on a call its scripted LLM holds.
                "CARDFLOW_WORK_DRAIN_TIMEOUT_S": "5",
                **metrics,
                **self.env,
                **replica,
            },
        )
        return ServiceProcess(f"services.{name}", env, self.workdir / "logs" / f"{log_name}.log")

    def start(self, *names: str) -> PipelineStack:
        for name in names or SERVICES:
            self.processes[name] = self._process(name).start()
        for name in names or SERVICES:
            self.wait_started(name)
        return self

    def wait_started(self, name: str, since: int = 0) -> None:
        """Until ``name`` logged that it is up (``since``: a log offset, after a restart)."""
        proc = self.processes[name]
        gateway = name.split("#")[0] == "gateway"
        marker = "Application startup complete" if gateway else "service started"

        def started() -> bool:
            if not proc.alive():
                raise AssertionError(f"{name} exited:\n{proc.log_tail()}")
            return marker in proc.log_since(since)

        until_sync(started, timeout=START_TIMEOUT_S, what=f"{name} to start")

    # Fault injection: crash, restart and scale out single services of a running stack.

    def kill(self, name: str) -> None:
        """SIGKILL ``name`` (a service, or a replica's key from ``start_replica``)."""
        self.processes[name].kill()

    def restart(self, name: str) -> None:
        """Starts ``name`` again (after a kill, or SIGTERMs it first) and waits until it is up."""
        proc = self.processes[name]
        if proc.alive():
            proc.terminate()
        since = proc.log_offset()
        proc.start()
        self.wait_started(name, since)

    def start_replica(self, name: str, instance: str = "b") -> str:
        """A second process of service ``name``; returns its key in ``processes``
        (``name#instance``), which ``stop`` stops with the rest."""
        key = f"{name}#{instance}"
        self.processes[key] = self._process(name, instance).start()
        self.wait_started(key)
        return key

    def remove(self, key: str) -> int | None:
        """SIGTERMs a replica (if alive) and forgets it; its exit code, None if it was dead."""
        proc = self.processes.pop(key)
        return proc.terminate() if proc.alive() else None

    def revive(self) -> list[str]:
        """Restarts every service of the stack that is not running (a fault test that failed
        midway must not leave the next one a broken stack); the names restarted."""
        dead = [name for name in SERVICES if name in self.processes]
        dead = [name for name in dead if not self.processes[name].alive()]
        for name in dead:
            self.restart(name)
        return dead

    def stop(self) -> dict[str, int]:
        """SIGTERM to each; the exit codes (uvicorn re-raises SIGTERM after a graceful
        shutdown, so the gateway's clean exit is -15)."""
        codes = {}
        for name, proc in self.processes.items():
            if proc.alive():
                codes[name] = proc.terminate()
        return codes

    def unclean_exits(self, codes: dict[str, int]) -> dict[str, int]:
        clean = {"gateway": (0, -15)}
        return {n: c for n, c in codes.items() if c not in clean.get(n.split("#")[0], (0,))}

    def client(self, api_key: str = API_KEY, timeout: float = 40.0) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {api_key}"}, timeout=timeout
        )

    def logs(self) -> str:
        return "\n".join(
            f"--- {name}\n{proc.log_tail(30)}" for name, proc in self.processes.items()
        )


def wait_for_run(
    client: httpx.Client, run_id: str, timeout_s: float = 180, etag: str | None = None
) -> list[dict]:  # type: ignore[type-arg]
    """Follows a run as a client would (ETag + long-poll) until it is terminal; returns every
    changed snapshot seen, in order (``etag``: the version the caller already has)."""
    snapshots: list[dict] = []  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        headers = {"If-None-Match": etag} if etag else {}
        response = client.get(f"/v1/runs/{run_id}", params={"wait": 5}, headers=headers)
        if response.status_code == 304:
            continue
        response.raise_for_status()
        assert response.headers["Cache-Control"] == "no-store"
        etag = response.headers["ETag"]
        run = response.json()
        snapshots.append(run)
        if run["status"] in ("succeeded", "partial", "failed", "cancelled"):
            return snapshots
    raise AssertionError(f"run {run_id} did not finish in {timeout_s}s: {snapshots[-1:]}")

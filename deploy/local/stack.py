#!/usr/bin/env python3
"""Runs the cardflow stack on this machine as background processes: up, down, status, logs, demo.

    python deploy/local/stack.py up | down | status | logs [NAME] [-f] [-n N] | demo

Everything it starts is recorded in ``<state>/processes.json`` (pid, and the process start
time from /proc so a pid the kernel has since given to another program is never taken for
ours); ``down`` stops exactly those processes and nothing else. State folder: ``.cardflow/``
of the checkout, or ``CARDFLOW_STATE_DIR``. Logs: ``<state>/logs/<name>.log``.

Environment:
  CARDFLOW_STATE_DIR                 state folder (default: <checkout>/.cardflow)
  CARDFLOW_KAFKA_PORT                port of the local broker (default 9092)
  CARDFLOW_KAFKA_CONTROLLER_PORT     its KRaft controller port (default: port + 1)
  CARDFLOW_KAFKA_BOOTSTRAP_SERVERS   use this broker instead of starting one
  CARDFLOW_GATEWAY_HOST/PORT         where the gateway listens (default 127.0.0.1:8000)
  CARDFLOW_BOOTSTRAP_API_KEY         the local API key (default: generated once, kept in
                                     <state>/api-key)
  CARDFLOW_STACK_ONLY                comma-separated names to run (e.g. "kafka"); default all
  CARDFLOW_STACK_TIMEOUT_S           how long each process may take to become ready (120)
  CARDFLOW_LLM_OFFLINE_LATENCY_S     `demo` starts the stage services with 1.5 (watchable
                                     progress) unless this is set; `up` keeps the default 0
  CARDFLOW_LOCAL_LLM                 1 (`make up/demo LLM=local`): also run llama.cpp's
                                     llama-server (built once by deploy/llama/fetch.py) and
                                     point every stage at it
  CARDFLOW_LLAMA_MODEL               the .gguf it serves (`MODEL=...`; default: Gemma 3 270M)
  CARDFLOW_LLAMA_PORT/CONTEXT/SLOTS  its port (8088), context in all (8192), parallel slots (2)

Processes, in start order: kafka, llama (with CARDFLOW_LOCAL_LLM), the stage services
analysis, epics, stories, subtasks (ready once their log says "service started": they have
no HTTP port), then the gateway
(ready once GET /readyz answers 200).

Standard library only, plus the venv's packages (aiokafka for the broker probe, the settings
model); run it with the venv's python, as the Makefile does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    # Run as a script, sys.path[0] is deploy/local; the services package lives at the root.
    sys.path.insert(0, str(REPO_ROOT))

KAFKA_DIR = REPO_ROOT / "deploy" / "kafka"
LLAMA_FETCH = REPO_ROOT / "deploy" / "llama" / "fetch.py"
STOP_TIMEOUT_S = 30.0
LOCAL_DRAIN_TIMEOUT_S = 15.0
KILL_TIMEOUT_S = 5.0
POLL_S = 0.2
# Stage services have no HTTP endpoint: ready once this line (written by the service runtime
# after migrations, topics and the broker connection) is in their log since their start.
WORKER_READY_LINE = "service started"
DEMO_FILE = "examples/field-service-prd.md"
DEMO_PROJECT = "Demo: field service"
DEMO_OFFLINE_LATENCY_S = "1.5"
LATENCY_VAR = "CARDFLOW_LLM_OFFLINE_LATENCY_S"
RUN_NOT_SUCCEEDED = 1
"""`cardflow run`'s exit code for a run that ended partial, failed or cancelled."""


class StackError(Exception):
    """A failure with a message for the user; main() prints it and exits non-zero."""


# --------------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class Config:
    state_dir: Path
    kafka_host: str
    kafka_port: int
    kafka_controller_port: int
    external_kafka: str | None
    gateway_host: str
    gateway_port: int
    metrics_base_port: int
    """Stage service n (1-4) serves /metrics on this + n; 0: none."""
    only: frozenset[str] | None
    ready_timeout_s: float
    local_llm: bool = False
    llama_port: int = 8088
    llama_context: int = 8192
    llama_slots: int = 2

    @property
    def bootstrap(self) -> str:
        return self.external_kafka or f"{self.kafka_host}:{self.kafka_port}"

    @property
    def gateway_connect_host(self) -> str:
        # A wildcard bind address is not something to connect to; the loopback is.
        return "127.0.0.1" if self.gateway_host in ("0.0.0.0", "::", "") else self.gateway_host

    @property
    def gateway_url(self) -> str:
        return f"http://{self.gateway_connect_host}:{self.gateway_port}"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def record_file(self) -> Path:
        return self.state_dir / "processes.json"

    @property
    def api_key_file(self) -> Path:
        return self.state_dir / "api-key"


def load_config(env: dict[str, str]) -> Config:
    from services.runtime.settings import Settings

    # The settings model owns the gateway defaults; the stack only adds its own knobs.
    try:
        settings = Settings()
    except ValueError as error:  # pydantic's ValidationError is a ValueError
        raise StackError(f"invalid CARDFLOW_* setting:\n{error}") from error
    state = Path(env.get("CARDFLOW_STATE_DIR") or REPO_ROOT / ".cardflow")
    kafka_port = int(env.get("CARDFLOW_KAFKA_PORT", "9092"))
    only = env.get("CARDFLOW_STACK_ONLY", "").strip()
    return Config(
        state_dir=(state if state.is_absolute() else REPO_ROOT / state).resolve(),
        kafka_host="127.0.0.1",
        kafka_port=kafka_port,
        kafka_controller_port=int(env.get("CARDFLOW_KAFKA_CONTROLLER_PORT", kafka_port + 1)),
        external_kafka=env.get("CARDFLOW_KAFKA_BOOTSTRAP_SERVERS") or None,
        gateway_host=settings.gateway_host,
        gateway_port=settings.gateway_port,
        metrics_base_port=int(env.get("CARDFLOW_STACK_METRICS_BASE_PORT", "9100")),
        only=frozenset(n.strip() for n in only.split(",") if n.strip()) or None,
        ready_timeout_s=float(env.get("CARDFLOW_STACK_TIMEOUT_S", "120")),
        local_llm=env.get("CARDFLOW_LOCAL_LLM", "").strip().lower()
        in ("1", "true", "yes", "local"),
        llama_port=int(env.get("CARDFLOW_LLAMA_PORT", "8088")),
        llama_context=int(env.get("CARDFLOW_LLAMA_CONTEXT", "8192")),
        llama_slots=max(1, int(env.get("CARDFLOW_LLAMA_SLOTS", "2"))),
    )


def api_key(cfg: Config, env: dict[str, str]) -> str:
    """The local API key: from the environment if set, else generated once and kept (mode 600)
    so it survives restarts of the stack."""
    if env.get("CARDFLOW_BOOTSTRAP_API_KEY"):
        return env["CARDFLOW_BOOTSTRAP_API_KEY"]
    path = cfg.api_key_file
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32) + "\n")
    path.chmod(0o600)
    return path.read_text().strip()


# --------------------------------------------------------------------------------------------
# What runs


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: list[str]
    env: dict[str, str]
    # Given the process's record (its log and where this start's lines begin in it).
    ready: Callable[[Record], bool]
    ready_means: str
    address: str = ""
    # Addresses it will bind: checked free before starting, so a clash is named, not a crash.
    binds: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class ServiceDef:
    """A Python service run as ``python -m services.<name>``."""

    name: str
    http_ready_path: str | None = None  # None: a stage worker; ready once its log says so


STAGE_SERVICES = ("analysis", "epics", "stories", "subtasks")
# Start order: the stages consume what the gateway publishes, so they are up before it.
SERVICES: tuple[ServiceDef, ...] = (
    *(ServiceDef(name) for name in STAGE_SERVICES),
    ServiceDef("gateway", http_ready_path="/readyz"),
)


def build_specs(
    cfg: Config,
    key: str,
    env: dict[str, str],
    stage_env: dict[str, str] | None = None,
    llama: LocalModel | None = None,
) -> list[ProcessSpec]:
    """``stage_env``: extra settings for the stage services only (the demo's latency);
    ``llama``: the local model server to run first and point the stages at."""
    specs = [] if cfg.external_kafka else [kafka_spec(cfg, env)]
    if llama is not None:
        specs.append(llama_spec(cfg, llama, env))
        stage_env = {**(stage_env or {}), **local_llm_env(cfg, llama, env)}
    specs += [
        service_spec(
            cfg,
            service,
            key,
            {**env, **(stage_env or {})} if service.name in STAGE_SERVICES else env,
        )
        for service in SERVICES
    ]
    if cfg.only is not None:
        unknown = cfg.only - {s.name for s in specs}
        if unknown:
            raise StackError(f"CARDFLOW_STACK_ONLY names unknown processes: {sorted(unknown)}")
        specs = [s for s in specs if s.name in cfg.only]
    return specs


@dataclass(frozen=True)
class LocalModel:
    server: Path
    model: Path


def fetch_local_model() -> LocalModel:
    """llama-server and the model, built and fetched once (in the foreground: a first build
    takes minutes and says so)."""
    done = subprocess.run(
        [sys.executable, str(LLAMA_FETCH)], stdout=subprocess.PIPE, text=True, check=False
    )
    if done.returncode != 0:
        raise StackError(f"deploy/llama/fetch.py failed (exit {done.returncode}); see above")
    paths = json.loads(done.stdout.strip().splitlines()[-1])
    return LocalModel(Path(paths["server"]), Path(paths["model"]))


def llama_spec(cfg: Config, llama: LocalModel, env: dict[str, str]) -> ProcessSpec:
    argv = [
        str(llama.server),
        "-m", str(llama.model),
        "--host", "127.0.0.1",
        "--port", str(cfg.llama_port),
        "-c", str(cfg.llama_context),
        "-np", str(cfg.llama_slots),
        "--metrics",
    ]  # fmt: skip
    url = f"http://127.0.0.1:{cfg.llama_port}"
    return ProcessSpec(
        name="llama",
        argv=argv,
        env=dict(env),
        ready=lambda _record: http_ok(url + "/health"),
        ready_means="GET /health answers 200 (the model is loaded)",
        address=f"{url}/v1",
        binds=(("127.0.0.1", cfg.llama_port),),
    )


def local_llm_env(cfg: Config, llama: LocalModel, env: dict[str, str]) -> dict[str, str]:
    """Every stage on the local server: its model, no more calls at once than it has slots
    (a queued request would wait for its first token), deadlines a small CPU model meets;
    anything the user set wins."""
    wanted = {
        "CARDFLOW_LLM_BASE_URL": f"http://127.0.0.1:{cfg.llama_port}/v1",
        "CARDFLOW_LLM_MODEL": llama.model.name,
        "CARDFLOW_LLM_TEMPERATURE": "0",
        "CARDFLOW_LLM_SEED": "7",
        "CARDFLOW_LLM_MAX_IN_FLIGHT": str(cfg.llama_slots),
        "CARDFLOW_LLM_TIMEOUT_S": "300",
        "CARDFLOW_LLM_FIRST_TOKEN_TIMEOUT_S": "120",
        "CARDFLOW_LLM_STREAM_IDLE_TIMEOUT_S": "60",
    }
    return {name: value for name, value in wanted.items() if not env.get(name)}


def stage_metrics_port(cfg: Config, name: str) -> int:
    """The /metrics port of a stage service (the gateway serves /metrics itself); 0: none."""
    if not cfg.metrics_base_port or name not in STAGE_SERVICES:
        return 0
    return cfg.metrics_base_port + 1 + STAGE_SERVICES.index(name)


def kafka_spec(cfg: Config, env: dict[str, str]) -> ProcessSpec:
    argv = [
        str(KAFKA_DIR / "run.sh"),
        "--data-dir",
        str(cfg.state_dir / "kafka"),
        "--host",
        cfg.kafka_host,
        "--port",
        str(cfg.kafka_port),
        "--controller-port",
        str(cfg.kafka_controller_port),
    ]
    return ProcessSpec(
        name="kafka",
        argv=argv,
        env=dict(env),
        ready=lambda _record: kafka_ready(cfg.bootstrap),
        ready_means="serves cluster metadata",
        address=cfg.bootstrap,
        binds=((cfg.kafka_host, cfg.kafka_port), (cfg.kafka_host, cfg.kafka_controller_port)),
    )


def service_spec(cfg: Config, service: ServiceDef, key: str, env: dict[str, str]) -> ProcessSpec:
    service_env = {
        **env,
        "CARDFLOW_SERVICE_NAME": service.name,
        "CARDFLOW_STATE_DIR": str(cfg.state_dir),
        "CARDFLOW_KAFKA_BOOTSTRAP_SERVERS": cfg.bootstrap,
        "CARDFLOW_BOOTSTRAP_API_KEY": key,
        "CARDFLOW_GATEWAY_HOST": cfg.gateway_host,
        "CARDFLOW_GATEWAY_PORT": str(cfg.gateway_port),
        "PYTHONUNBUFFERED": "1",  # log lines reach the file as they happen
    }
    # Text logs read better in a terminal; an explicit setting still wins.
    service_env.setdefault("CARDFLOW_LOG_FORMAT", "text")
    # `make down` should not wait minutes on a slow LLM call: items still running after this
    # are handed back and redone at the next `make up` (fits within STOP_TIMEOUT_S).
    service_env.setdefault("CARDFLOW_WORK_DRAIN_TIMEOUT_S", str(LOCAL_DRAIN_TIMEOUT_S))
    metrics_port = stage_metrics_port(cfg, service.name)
    if metrics_port:
        service_env["CARDFLOW_METRICS_PORT"] = str(metrics_port)
    argv = [sys.executable, "-m", f"services.{service.name}"]
    if service.http_ready_path is not None:
        url = cfg.gateway_url + service.http_ready_path
        return ProcessSpec(
            name=service.name,
            argv=argv,
            env=service_env,
            ready=lambda _record: http_ok(url),
            ready_means=f"GET {service.http_ready_path} answers 200",
            address=cfg.gateway_url,
            binds=((cfg.gateway_connect_host, cfg.gateway_port),),
        )
    return ProcessSpec(
        name=service.name,
        argv=argv,
        env=service_env,
        ready=lambda record: log_says_started(record),
        ready_means=f"its log says {WORKER_READY_LINE!r}",
        address=f"http://127.0.0.1:{metrics_port}/metrics" if metrics_port else "",
        binds=(("127.0.0.1", metrics_port),) if metrics_port else (),
    )


# --------------------------------------------------------------------------------------------
# Probes


def port_open(host: str, port: int, timeout_s: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def kafka_ready(bootstrap: str) -> bool:
    """A real client fetches metadata naming a broker: the port opens before the broker can
    serve requests, so a TCP connect alone is not enough."""
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    if not port_open(host, int(port)):
        return False
    return asyncio.run(_kafka_metadata(bootstrap)) and _warm_up(bootstrap)


def _warm_up(bootstrap: str) -> bool:
    """A fresh broker creates its internal topics now, not while the services all start
    (that made the first run several times slower)."""
    from services.runtime.topics import warm_up_broker

    try:
        asyncio.run(warm_up_broker(bootstrap, timeout_s=60))
    except Exception:
        return False
    return True


async def _kafka_metadata(bootstrap: str) -> bool:
    from aiokafka.client import AIOKafkaClient

    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await asyncio.wait_for(client.bootstrap(), 6)
        return bool(client.cluster.brokers())
    except Exception:
        return False
    finally:
        await client.close()


def start_marker(name: str) -> bytes:
    """The line spawn() writes to a log before each start of ``name``."""
    return f"--- stack.py: starting {name} at ".encode()


def log_says_started(record: Record) -> bool:
    """The ready line is in the record's log after the marker of its latest start (a log
    holds every start's lines; an earlier start's "service started" does not count)."""
    try:
        with open(record.log, "rb") as log:
            log.seek(record.log_offset)
            text = log.read()
    except OSError:
        return False
    start = text.rfind(start_marker(record.name))
    return start >= 0 and WORKER_READY_LINE.encode() in text[start:]


def http_json(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as error:
        return 0, str(error)


# --------------------------------------------------------------------------------------------
# Processes, as the kernel sees them


@dataclass(frozen=True)
class ProcStat:
    state: str
    pgrp: int
    start_ticks: int


def proc_stat(pid: int) -> ProcStat | None:
    """Fields of /proc/<pid>/stat; None if there is no such process. The command name may
    hold spaces and parentheses, so fields are counted from the last ')'."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state); pgrp is field 5; starttime is field 22.
    return ProcStat(state=fields[0], pgrp=int(fields[2]), start_ticks=int(fields[19]))


def running(stat: ProcStat | None) -> bool:
    # A zombie has exited; only its entry waits to be reaped by whoever is its parent now.
    return stat is not None and stat.state not in ("Z", "X")


def group_members(pgid: int, not_before_ticks: int) -> list[int]:
    """Live processes in group ``pgid`` that started no earlier than our leader: a child the
    leader forked (a server's worker) lives on in the group after the leader exits."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = proc_stat(int(entry.name))
        if running(stat) and stat and stat.pgrp == pgid and stat.start_ticks >= not_before_ticks:
            members.append(int(entry.name))
    return members


# --------------------------------------------------------------------------------------------
# The record of what we started


@dataclass
class Record:
    name: str
    pid: int
    start_ticks: int
    started_at: str
    log: str
    argv: list[str] = field(default_factory=list)
    # Where this start's lines begin in the log (0 for records written before it was kept).
    log_offset: int = 0

    def leader_alive(self) -> bool:
        """Our process, not merely some process with that pid: the start time must match."""
        stat = proc_stat(self.pid)
        return running(stat) and stat is not None and stat.start_ticks == self.start_ticks

    def leftovers(self) -> list[int]:
        """Members of our process group still running. The group id is the leader's pid, and
        the kernel does not hand out a pid that is still some group's id, so while members
        remain the group is ours; unless the pid is in use by a different (newer) process,
        in which case the group is someone else's and we leave it alone."""
        if self.leader_alive():
            return group_members(self.pid, self.start_ticks)
        if running(proc_stat(self.pid)):
            return []
        return group_members(self.pid, self.start_ticks)


def load_records(cfg: Config) -> dict[str, Record]:
    try:
        data = json.loads(cfg.record_file.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise StackError(f"cannot read {cfg.record_file}: {error}") from error
    return {item["name"]: Record(**item) for item in data.get("processes", [])}


def save_records(cfg: Config, records: dict[str, Record]) -> None:
    # Written aside then renamed: an interrupted write never leaves a record we cannot read.
    tmp = cfg.record_file.with_suffix(".json.tmp")
    payload = {"version": 1, "processes": [asdict(r) for r in records.values()]}
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    tmp.replace(cfg.record_file)


@contextlib.contextmanager
def locked(cfg: Config) -> Iterator[None]:
    """One up/down at a time per state folder: two concurrent `up`s would both start."""
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    with open(cfg.state_dir / "stack.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


# --------------------------------------------------------------------------------------------
# Starting and stopping


def spawn(cfg: Config, spec: ProcessSpec) -> Record:
    log_path = cfg.logs_dir / f"{spec.name}.log"
    with open(log_path, "ab") as log:
        offset = log.tell()
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        log.write(b"\n" + start_marker(spec.name) + f"{stamp} ---\n".encode())
        log.flush()
        # Own session and process group: Ctrl-C in the terminal that ran `up` does not reach
        # it, and `down` can signal the process with everything it forked.
        proc = subprocess.Popen(
            spec.argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=spec.env,
            cwd=REPO_ROOT,
            start_new_session=True,
        )
    stat = proc_stat(proc.pid)
    if stat is None:
        raise StackError(f"{spec.name} exited at once; log:\n{tail(log_path)}")
    return Record(
        name=spec.name,
        pid=proc.pid,
        start_ticks=stat.start_ticks,
        started_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        log=str(log_path),
        argv=spec.argv,
        log_offset=offset,
    )


def wait_ready(cfg: Config, spec: ProcessSpec, record: Record) -> float:
    """Seconds until ``spec`` was ready; StackError with the log tail if the process died or
    the deadline passed."""
    started = time.monotonic()
    deadline = started + cfg.ready_timeout_s
    while True:
        if not record.leader_alive():
            raise StackError(
                f"{spec.name} exited during startup; last lines of {record.log}:\n"
                f"{tail(Path(record.log))}"
            )
        waited = time.monotonic() - started
        if spec.ready(record):
            return waited
        if time.monotonic() > deadline:
            raise StackError(
                f"{spec.name} did not get ready ({spec.ready_means}) within "
                f"{cfg.ready_timeout_s:.0f} s; it is still running (pid {record.pid}); "
                f"`make down` stops it. Last lines of {record.log}:\n{tail(Path(record.log))}"
            )
        time.sleep(POLL_S)


def stop(record: Record) -> bool:
    """SIGTERM to the record's process group, SIGKILL after a deadline; True once nothing of
    it runs. A group that is no longer ours is never signalled (see Record.leftovers)."""
    for sig, timeout_s in ((signal.SIGTERM, STOP_TIMEOUT_S), (signal.SIGKILL, KILL_TIMEOUT_S)):
        if not record.leftovers():
            return True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(record.pid, sig)
        deadline = time.monotonic() + timeout_s
        while record.leftovers() and time.monotonic() < deadline:
            time.sleep(POLL_S)
    return not record.leftovers()


def tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


# --------------------------------------------------------------------------------------------
# Commands


def cmd_up(cfg: Config, env: dict[str, str]) -> int:
    start_stack(cfg, env)
    return 0


def start_stack(
    cfg: Config, env: dict[str, str], stage_env: dict[str, str] | None = None
) -> tuple[str, list[str]]:
    """Starts what is not running and waits until all is ready: (the API key, the names of
    the processes that were running already and so kept the settings they started with)."""
    cfg.logs_dir.mkdir(parents=True, exist_ok=True)
    key = api_key(cfg, env)
    llama = fetch_local_model() if cfg.local_llm else None
    specs = build_specs(cfg, key, env, stage_env, llama)
    if any(spec.name == "kafka" for spec in specs):
        prepare_kafka()
    with locked(cfg):
        records = load_records(cfg)
        already = [spec.name for spec in specs if not bring_up(cfg, spec, records)]
    print_where(cfg, specs, key)
    return key, already


def prepare_kafka() -> None:
    """Java check and the one-time jar fetch in the foreground, so their messages (and a
    Maven download) show here rather than inside the broker's startup deadline."""
    for script in ("check-java.sh", "fetch.sh"):
        done = subprocess.run([str(KAFKA_DIR / script)], stdout=subprocess.DEVNULL, check=False)
        if done.returncode != 0:
            raise StackError(f"deploy/kafka/{script} failed (exit {done.returncode}); see above")


def bring_up(cfg: Config, spec: ProcessSpec, records: dict[str, Record]) -> bool:
    """Starts ``spec`` unless it runs already; True if it was started now."""
    existing = records.get(spec.name)
    if existing is not None and existing.leader_alive():
        wait_ready(cfg, spec, existing)
        print(f"{spec.name:<9} already running  pid {existing.pid:<7} {spec.address}")
        return False
    if existing is not None:
        print(f"{spec.name:<9} was recorded (pid {existing.pid}) but is gone; starting again")
        stop(existing)  # sweeps anything of it left in its group
    busy = [f"{host}:{port}" for host, port in spec.binds if port_open(host, port, 0.5)]
    if busy:
        raise StackError(
            f"cannot start {spec.name}: {', '.join(busy)} already in use by another program "
            "(not one this stack started); stop it or choose other ports (see --help)"
        )
    record = spawn(cfg, spec)
    records[spec.name] = record
    save_records(cfg, records)  # recorded before waiting, so `down` can stop it regardless
    try:
        waited = wait_ready(cfg, spec, record)
    except StackError:
        if not record.leader_alive():
            stop(record)
            del records[spec.name]
            save_records(cfg, records)
        raise
    print(f"{spec.name:<9} started          pid {record.pid:<7} {spec.address}  ({waited:.1f} s)")
    return True


def print_where(cfg: Config, specs: list[ProcessSpec], key: str) -> None:
    names = {spec.name for spec in specs}
    print()
    print("cardflow is up.")
    if "gateway" in names:
        print(f"  gateway   {cfg.gateway_url}   (health: {cfg.gateway_url}/readyz)")
    print(f"  kafka     {cfg.bootstrap}")
    if "llama" in names:
        print(f"  llama     http://127.0.0.1:{cfg.llama_port}/v1   (a local model, llama.cpp)")
    print(f"  API key   {key}   (kept in {cfg.api_key_file})")
    print(f"  logs      make logs   ({cfg.logs_dir})")
    print("  stop      make down")


def cmd_down(cfg: Config) -> int:
    if not cfg.record_file.exists():
        print("nothing to stop")
        return 0
    with locked(cfg):
        records = load_records(cfg)
        if not records:
            print("nothing to stop")
        # Reverse start order: services before the broker they talk to.
        for name in reversed(list(records)):
            record = records[name]
            was_running = bool(record.leftovers())
            if not stop(record):
                save_records(cfg, records)
                raise StackError(f"{name} (pid {record.pid}) would not stop, even on SIGKILL")
            print(f"{name:<9} {'stopped' if was_running else 'was not running'}  pid {record.pid}")
            del records[name]
            save_records(cfg, records)
        cfg.record_file.unlink(missing_ok=True)
    return 0


def cmd_status(cfg: Config) -> int:
    records = load_records(cfg)
    if not records:
        print(f"nothing recorded in {cfg.record_file}; `make up` starts the stack")
        return 0
    print(f"{'NAME':<9} {'PID':<7} {'ALIVE':<6} {'STARTED':<25} LOG")
    for record in records.values():
        alive = "yes" if record.leader_alive() else "no"
        print(f"{record.name:<9} {record.pid:<7} {alive:<6} {record.started_at:<25} {record.log}")
    return 0


def cmd_logs(cfg: Config, name: str | None, follow: bool, lines: int) -> int:
    paths = log_paths(cfg, name)
    for label, path in paths.items():
        print(f"==> {label} ({path}) <==")
        print(tail(path, lines))
    if follow:
        follow_logs(paths)
    return 0


def log_paths(cfg: Config, name: str | None) -> dict[str, Path]:
    found = {p.stem: p for p in sorted(cfg.logs_dir.glob("*.log"))}
    if name is None:
        if not found:
            raise StackError(f"no logs in {cfg.logs_dir} yet; `make up` starts the stack")
        return found
    if name not in found:
        raise StackError(f"no log for {name!r}; there are: {', '.join(found) or 'none'}")
    return {name: found[name]}


def follow_logs(paths: dict[str, Path]) -> None:
    """Like ``tail -f`` over several files, each line prefixed with its process name."""
    offsets = {label: path.stat().st_size for label, path in paths.items()}
    try:
        while True:
            for label, path in paths.items():
                offsets[label] = print_new_lines(label, path, offsets[label])
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass


def print_new_lines(label: str, path: Path, offset: int) -> int:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return 0
    if size < offset:  # truncated or replaced: start over
        offset = 0
    if size == offset:
        return offset
    with open(path, "rb") as log:
        log.seek(offset)
        chunk = log.read(size - offset)
    # Hold back a partial last line until it is complete.
    complete = chunk[: chunk.rfind(b"\n") + 1]
    for line in complete.decode(errors="replace").splitlines():
        print(f"{label:<9}| {line}", flush=True)
    return offset + len(complete)


def demo_stage_env(env: dict[str, str], cfg: Config | None = None) -> dict[str, str]:
    """The demo's stage services draft slowly enough to watch, unless the user said how (or a
    real model sets the pace)."""
    if env.get(LATENCY_VAR) or (cfg is not None and cfg.local_llm):
        return {}
    return {LATENCY_VAR: DEMO_OFFLINE_LATENCY_S}


def cmd_demo(cfg: Config, env: dict[str, str]) -> int:
    stage_env = demo_stage_env(env, cfg)
    key, already = start_stack(cfg, env, stage_env)
    print()
    for path in ("/healthz", "/readyz"):
        status, body = http_json(cfg.gateway_url + path)
        print(f"GET {path} -> {status or 'no answer'} {body.strip()}")
    wanted = env.get(LATENCY_VAR) or ("0" if cfg.local_llm else DEMO_OFFLINE_LATENCY_S)
    kept = [name for name in already if name in STAGE_SERVICES]
    started_with = {name: started_env(cfg, name).get(LATENCY_VAR) or "0" for name in kept}
    differ = {name: value for name, value in started_with.items() if value != wanted}
    if differ:
        # Restarting them here would kill whatever they are working on; say so instead.
        print(
            f"\nnote: {', '.join(differ)} were already running and keep the simulated LLM "
            f"latency they were started with ({', '.join(sorted(set(differ.values())))} s, "
            f"not {wanted} s); to change it: make down && make demo"
        )
    return run_demo(cfg, env, key)


def started_env(cfg: Config, name: str) -> dict[str, str]:
    """The environment a recorded process of ours was started with ({} if unknown)."""
    record = load_records(cfg).get(name)
    if record is None or not record.leader_alive():
        return {}
    try:
        raw = Path(f"/proc/{record.pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.decode(errors="replace").partition("=") for item in raw.split(b"\0") if item)
    return {key: value for key, _, value in pairs}


def demo_cli_argv() -> list[str]:
    """`cardflow run` on the sample, through this interpreter (no PATH assumption)."""
    return [
        sys.executable,
        "-m",
        "services.gateway.cardflow",
        "run",
        DEMO_FILE,
        "--name",
        DEMO_PROJECT,
    ]


def run_demo(cfg: Config, env: dict[str, str] | None = None, key: str | None = None) -> int:
    """The sample document through the pipeline with `cardflow run`, its live progress in this
    terminal, then where to look around. The exit code is the CLI's: 0 only if the run
    succeeded."""
    env = dict(os.environ) if env is None else env
    key = key or api_key(cfg, env)
    llm = env.get("CARDFLOW_LLM_BASE_URL") or (
        f"llama-server at http://127.0.0.1:{cfg.llama_port}/v1 (a local model)"
        if cfg.local_llm
        else "the offline provider (drafts from the text)"
    )
    print(f"\nRunning {DEMO_FILE} through the pipeline; LLM: {llm}\n", flush=True)
    cli_env = {**env, "CARDFLOW_URL": cfg.gateway_url, "CARDFLOW_API_KEY": key}
    proc = subprocess.Popen(demo_cli_argv(), env=cli_env, cwd=REPO_ROOT)
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        # Ctrl-C reached the CLI too (same terminal): it detaches and says so.
        try:
            code = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
    print_look_around(cfg, key)
    if code == RUN_NOT_SUCCEEDED and cfg.local_llm:
        # The run reached its end; a small local model failing items is what it measures.
        print(
            "\nmake demo: the run ended with failed items (the local model's answers failed "
            "the stages' checks: see `errors` above); a larger model (MODEL=...) fails fewer"
        )
        return 0
    if code != 0:
        print(f"\nmake demo: the run did not succeed (cardflow exit code {code})", file=sys.stderr)
    return code


def latest_demo_run(cfg: Config, key: str) -> str | None:
    """The id of the newest run of the newest demo project, for the closing lines."""
    headers = {"Authorization": f"Bearer {key}"}

    def get(path: str) -> Any:
        request = urllib.request.Request(cfg.gateway_url + path, headers=headers)
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())

    try:
        projects = get("/v1/projects").get("projects") or []
        for project in projects:  # newest first
            if isinstance(project, dict) and project.get("name") == DEMO_PROJECT:
                runs = get(f"/v1/projects/{project['id']}/runs").get("runs") or []
                return str(runs[0]["id"]) if runs else None
    except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return None


def cli_hint(cfg: Config) -> str:
    """How to call the CLI against this stack from the checkout: the venv's console script,
    with --url when the gateway is not where the CLI looks by default."""
    script = Path(sys.executable).with_name("cardflow")
    with contextlib.suppress(ValueError):
        script = script.relative_to(REPO_ROOT)
    hint = str(script)
    if cfg.gateway_url != "http://127.0.0.1:8000":
        hint += f" --url {cfg.gateway_url}"
    return hint


def print_look_around(cfg: Config, key: str) -> None:
    run_id = latest_demo_run(cfg, key)
    cli = cli_hint(cfg)
    print("\nLook around (the stack keeps running):")
    if run_id:
        print(f"  the run    {cfg.gateway_url}/v1/runs/{run_id}")
        print(f"             {cli} status {run_id}")
    print(f"  all runs   {cli} runs")
    print(f"  API docs   {cfg.gateway_url}/docs   (API key in {cfg.api_key_file})")
    print("  logs       make logs")
    print("  stop       make down")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="stack.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start what is not running; wait until ready")
    commands.add_parser("down", help="stop exactly what `up` started")
    commands.add_parser("status", help="recorded processes and whether they run")
    logs = commands.add_parser("logs", help="show (or follow) the log files")
    logs.add_argument("name", nargs="?", help="one process (default: all)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    logs.add_argument("-n", "--lines", type=int, default=40, help="lines per log (40)")
    commands.add_parser("demo", help="up, show health, run the sample")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # The broker probe retries on purpose; aiokafka's per-attempt errors are noise here.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    env = dict(os.environ)
    try:
        cfg = load_config(env)
        if args.command == "up":
            return cmd_up(cfg, env)
        if args.command == "down":
            return cmd_down(cfg)
        if args.command == "status":
            return cmd_status(cfg)
        if args.command == "logs":
            return cmd_logs(cfg, args.name, args.follow, args.lines)
        return cmd_demo(cfg, env)
    except StackError as error:
        print(f"stack.py {args.command}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"stack.py {args.command}: interrupted; `make down` stops what was started")
        return 130


if __name__ == "__main__":
    sys.exit(main())

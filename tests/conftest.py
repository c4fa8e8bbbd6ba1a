"""Fixtures for real infrastructure: a Kafka broker and a PostgreSQL server per test session, a
fresh database per test, unique topic and group names. See tests/support/infra.py for where
they come from. A dependency that cannot be had fails the tests that need it, with the reason;
it never skips them.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from tests.support import infra

T = TypeVar("T")

# The `stack` fixture (every service as a process on a real broker) for e2e and fault tests.
pytest_plugins = ["tests.support.stack_fixtures"]

# Fixture -> marker, so `-m "not kafka"` etc. select without every test repeating the marker.
_FIXTURE_MARKERS = {"kafka_bootstrap": "kafka", "local_kafka": "kafka", "postgres_url": "postgres"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture, marker in _FIXTURE_MARKERS.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(marker)


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Where Kafka and PostgreSQL will come from (the terminal summary says what was used)."""
    docker_ok, docker_why = infra.docker_engine()
    local = "testcontainers" if docker_ok else f"local process ({docker_why})"
    kafka = "KAFKA_BOOTSTRAP_SERVERS" if _env("KAFKA_BOOTSTRAP_SERVERS") else local
    postgres = "CARDFLOW_TEST_DATABASE_URL" if _env("CARDFLOW_TEST_DATABASE_URL") else local
    return [f"cardflow infra: kafka from {kafka}; postgres from {postgres}"]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not infra.PROVISIONED:
        return
    terminalreporter.write_sep("-", "cardflow infrastructure used")
    for record in infra.PROVISIONED:
        terminalreporter.write_line(record.line())


def _env(name: str) -> str:
    return os.environ.get(name, "").strip()


def _or_fail(provision: Callable[[], T]) -> T:
    """``provision()``, or a test failure carrying the InfraError's reason. pytest.fail is
    called after the except block so the report shows the reason alone, not a chain."""
    try:
        return provision()
    except infra.InfraError as exc:
        reason = str(exc)
    pytest.fail(reason, pytrace=False)


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of a real Kafka broker shared by the session."""
    with contextlib.ExitStack() as stack:
        workdir = tmp_path_factory.mktemp("kafka")
        yield _or_fail(lambda: stack.enter_context(infra.kafka_broker(workdir)))


def _ready_local_kafka(workdir: Path) -> infra.LocalKafka:
    infra.ensure_kafka_jars()
    broker = infra.LocalKafka(workdir / "kafka", workdir / "kafka.log")
    broker.start()
    try:
        broker.wait_ready()
    except BaseException:
        broker.stop()
        raise
    return broker


@pytest.fixture
def local_kafka(tmp_path: Path) -> Iterator[infra.LocalKafka]:
    """A broker of the test's own, started and ready, that the test may stop, kill and start
    again (fault injection); stopped at teardown."""
    broker = _or_fail(lambda: _ready_local_kafka(tmp_path))
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """``postgresql+asyncpg://`` URL of a real PostgreSQL server shared by the session; tests
    that write should use ``database_url`` (a database of their own) instead."""
    with contextlib.ExitStack() as stack:
        yield _or_fail(lambda: stack.enter_context(infra.postgres_server()))


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database for this test: a SQLite file, or a new PostgreSQL database
    (created on the session's server, dropped afterwards). Store tests run on both."""
    if request.param == "sqlite":
        yield infra.sqlite_url(tmp_path / "test.db")
        return
    # Asked for lazily so a run of only the sqlite cases never starts a PostgreSQL server.
    server = request.getfixturevalue("postgres_url")
    with contextlib.ExitStack() as stack:
        yield _or_fail(lambda: stack.enter_context(infra.fresh_postgres_database(server)))


def _test_slug(request: pytest.FixtureRequest) -> str:
    return re.sub(r"[^a-zA-Z0-9]+", "-", request.node.name).strip("-")[:60]


@pytest.fixture
def unique_topic(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """``unique_topic("cards")`` -> a topic name no other test uses (includes the test name)."""
    slug = _test_slug(request)

    def make(prefix: str = "topic") -> str:
        return infra.unique_topic(f"{prefix}.{slug}")

    return make


@pytest.fixture
def unique_group(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """``unique_group("epics")`` -> a consumer group id no other test uses."""
    slug = _test_slug(request)

    def make(prefix: str = "group") -> str:
        return infra.unique_group(f"{prefix}.{slug}")

    return make

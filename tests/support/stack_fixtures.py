"""A running pipeline stack per database backend, shared by the tests of a module (e2e, faults).

A module may define a ``stack_env`` fixture (extra environment for every service, e.g. an
LLM endpoint) and ``STACK_BACKENDS`` (default: both SQLite and PostgreSQL)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from tests.support import infra
from tests.support.stack import SERVICES, PipelineStack


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Only where `stack` is this plugin's fixture: a module may define a `stack` of its own.
    if "stack" in metafunc.fixturenames and not hasattr(metafunc.module, "stack"):
        backends = getattr(metafunc.module, "STACK_BACKENDS", ("sqlite", "postgresql"))
        metafunc.parametrize("backend", backends, scope="module")


@pytest.fixture(scope="module")
def stack_env() -> dict[str, str]:
    return {}


@pytest.fixture(scope="module")
def stack(
    request: pytest.FixtureRequest,
    backend: str,
    kafka_bootstrap: str,
    stack_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[PipelineStack]:
    workdir = tmp_path_factory.mktemp(f"stack-{backend}")
    with contextlib.ExitStack() as resources:
        # Each service its own database, and one more they all share: the fleet's (LLM
        # ceilings, budgets, cancellation), as in production.
        if backend == "sqlite":
            urls = {name: infra.sqlite_url(workdir / f"{name}.db") for name in SERVICES}
            fleet = infra.sqlite_url(workdir / "fleet.db")
        else:
            server = request.getfixturevalue("postgres_url")
            urls = {
                name: resources.enter_context(infra.fresh_postgres_database(server))
                for name in SERVICES
            }
            fleet = resources.enter_context(infra.fresh_postgres_database(server))
        env = {"CARDFLOW_FLEET_DATABASE_URL": fleet, **stack_env}
        pipeline = PipelineStack(kafka_bootstrap, urls, workdir, env=env)
        try:
            yield pipeline.start()
        finally:
            bad = pipeline.unclean_exits(pipeline.stop())
            assert not bad, f"services did not stop cleanly: {bad}\n{pipeline.logs()}"

"""A running pipeline stack per database backend, shared by the tests of a module."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from tests.support import infra
from tests.support.stack import SERVICES, PipelineStack


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stack(
    request: pytest.FixtureRequest,
    kafka_bootstrap: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[PipelineStack]:
    workdir = tmp_path_factory.mktemp(f"stack-{request.param}")
    with contextlib.ExitStack() as resources:
        if request.param == "sqlite":
            urls = {name: infra.sqlite_url(workdir / f"{name}.db") for name in SERVICES}
        else:
            server = request.getfixturevalue("postgres_url")
            urls = {
                name: resources.enter_context(infra.fresh_postgres_database(server))
                for name in SERVICES
            }
        env = request.module.__dict__.get("STACK_ENV", {})
        pipeline = PipelineStack(kafka_bootstrap, urls, workdir, env=env)
        try:
            yield pipeline.start()
        finally:
            codes = pipeline.stop()
            bad = pipeline.unclean_exits(codes)
            assert not bad, f"services did not stop cleanly: {bad}\n{pipeline.logs()}"

"""The run read path on a real uvicorn server and both databases: many long-pollers of one
run cost one read of the database per version (counted from the engine's statements), a
change another replica projects wakes them all through one sweep, long-polls are bounded per
tenant, a poll whose client hangs up frees its slot, and a snapshot read sees one snapshot."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, select, text

from contracts import root_envelope
from contracts.events import ProgressKind, RunProgress, Stage
from services.gateway.app import create_app
from services.gateway.readmodel.projection import Projection
from services.gateway.readmodel.tables import runs
from services.gateway.readmodel.watch import RunWatch
from services.runtime.db import make_engine, make_sessions, snapshot_read
from services.runtime.settings import Settings
from tests.support.infra import sqlite_url
from tests.support.served import served
from tests.support.wait import until

pytestmark = pytest.mark.integration

KEY = "read-path-test-key"
POLLERS = 200


class Statements:
    """What the gateway's engine sends, by kind (thread-safe: the server has its own loop)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        flat = " ".join(statement.split()).lower()
        if flat.startswith(("begin", "commit", "rollback", "set ", "show ")):
            return
        kind = (
            "version sweep"
            if "runs.run_id in (" in flat
            else "run snapshot"
            if "item_results" in flat
            else "other"
        )
        with self._lock:
            self.counts[kind] += 1

    def now(self) -> Counter[str]:
        with self._lock:
            return Counter(self.counts)


@dataclass
class Gateway:
    app: FastAPI
    url: str
    statements: Statements
    database_url: str


def _settings(database_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(
        service_name="gateway",
        database_url=database_url,
        fleet_database_url=sqlite_url(tmp_path / "fleet.db"),
        state_dir=tmp_path,
        bootstrap_api_key=KEY,  # type: ignore[arg-type]
        poll_sweep_interval_s=0.2,
        **overrides,
    )


@pytest.fixture
def gateway_factory(database_url: str, tmp_path: Path) -> Iterator[Any]:
    stack: list[Any] = []

    def start(**overrides: Any) -> Gateway:
        app = create_app(_settings(database_url, tmp_path, **overrides))
        statements = Statements()
        event.listen(app.state.service.engine.sync_engine, "before_cursor_execute", statements)
        interval = app.state.settings.poll_sweep_interval_s
        context = served(app, [lambda stop: app.state.runs.sweep_forever(stop, interval)])
        url = context.__enter__()
        stack.append(context)
        return Gateway(app, url, statements, database_url)

    yield start
    for context in reversed(stack):
        context.__exit__(None, None, None)


def _client(url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=url,
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=60,
        limits=httpx.Limits(max_connections=POLLERS + 20, max_keepalive_connections=POLLERS + 20),
    )


async def _a_run(http: httpx.AsyncClient) -> tuple[dict[str, Any], str]:
    project = (await http.post("/v1/projects", json={"name": "Polled"})).json()["id"]
    added = await http.post(
        f"/v1/projects/{project}/cards", json={"cards": [{"title": "Export", "body": "CSV"}]}
    )
    assert added.status_code == 202, added.text
    created = await http.post(f"/v1/projects/{project}/runs", json={"stage": "analysis"})
    assert created.status_code == 202, created.text
    return created.json(), added.json()["card_ids"][0]


async def _project_elsewhere(database_url: str, run: dict[str, Any], card_id: str) -> None:
    """Another gateway replica projects an item's start: its own engine, the real projection."""
    engine = make_engine(database_url)
    try:
        sessions = make_sessions(engine)
        async with sessions() as session:
            tenant = (
                await session.execute(select(runs.c.tenant_id).where(runs.c.run_id == run["id"]))
            ).scalar_one()
        data = RunProgress(
            run_id=run["id"],
            project_id=run["project_id"],
            stage=Stage.ANALYSIS,
            kind=ProgressKind.ITEM_STARTED,
            item_id=card_id,
            attempt=1,
        )
        envelope = root_envelope(
            type=RunProgress.TYPE,
            schema_version=1,
            source="analysis",
            tenant_id=tenant,
            project_id=run["project_id"],
            run_id=run["id"],
            correlation_id=run["id"],
            key=run["id"],
            data=data.model_dump(mode="json"),
        )
        async with sessions.begin() as session:
            await Projection(RunWatch()).apply_progress(session, envelope)
    finally:
        await engine.dispose()


async def test_many_long_polls_of_one_run_cost_one_read_per_version(gateway_factory: Any) -> None:
    gateway: Gateway = gateway_factory()
    cache = gateway.app.state.runs
    async with _client(gateway.url) as http:
        run, card_id = await _a_run(http)
        first = await http.get(f"/v1/runs/{run['id']}")
        etag = first.headers["ETag"]
        assert etag == f'W/"v{first.json()["version"]}"', "weak: the clock fields move"
        polls = [
            asyncio.create_task(
                http.get(f"/v1/runs/{run['id']}?wait=25", headers={"If-None-Match": etag})
            )
            for _ in range(POLLERS)
        ]
        await until(lambda: cache.waiting == POLLERS, timeout=60, what="every poll waiting")
        before = gateway.statements.now()
        await _project_elsewhere(gateway.database_url, run, card_id)
        answers = await asyncio.gather(*polls)
        during = gateway.statements.now() - before

    assert {a.status_code for a in answers} == {200}
    versions = {a.json()["version"] for a in answers}
    assert len(versions) == 1
    assert versions.pop() > first.json()["version"]
    assert {a.json()["in_progress"][0]["item_id"] for a in answers} == {card_id}
    assert during["run snapshot"] == 1, f"one read of the new version for {POLLERS}: {during}"
    assert during["other"] <= 3, f"no reads per poller: {during}"


async def test_long_polls_beyond_a_tenants_bound_are_429_and_a_hung_up_poll_frees_its_slot(
    gateway_factory: Any,
) -> None:
    gateway: Gateway = gateway_factory(poll_max_waiters_per_tenant=2)
    cache = gateway.app.state.runs
    async with _client(gateway.url) as http:
        run, _ = await _a_run(http)
        etag = (await http.get(f"/v1/runs/{run['id']}")).headers["ETag"]
        path, headers = f"/v1/runs/{run['id']}?wait=25", {"If-None-Match": etag}
        held = [asyncio.create_task(http.get(path, headers=headers)) for _ in range(2)]
        await until(lambda: cache.waiting == 2, timeout=30, what="two polls held")

        refused = await http.get(path, headers=headers)
        assert refused.status_code == 429, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["code"] == "rate_limited"
        assert refused.headers["Retry-After"] == "1"

        held[0].cancel()  # the client hangs up: its connection closes
        await until(lambda: cache.waiting == 1, timeout=30, what="the hung-up poll's slot freed")
        held.append(asyncio.create_task(http.get(path, headers=headers)))
        await until(lambda: cache.waiting == 2, timeout=30, what="a new poll taking the slot")
        for task in held:
            task.cancel()
        await asyncio.gather(*held, return_exceptions=True)


@pytest.fixture
async def table(database_url: str) -> AsyncIterator[Any]:
    engine = make_engine(database_url)
    async with engine.begin() as connection:
        await connection.execute(text("DROP TABLE IF EXISTS snapshot_probe"))
        await connection.execute(text("CREATE TABLE snapshot_probe (n INTEGER)"))
    yield engine
    await engine.dispose()


async def test_a_snapshot_read_sees_one_snapshot(table: Any, database_url: str) -> None:
    """A run's version and its items are read in two statements: no commit may fall between,
    and the reader holds up no writer."""
    sessions = make_sessions(table)
    count = text("SELECT COUNT(*) FROM snapshot_probe")
    async with snapshot_read(sessions) as session:
        assert (await session.execute(count)).scalar_one() == 0
        # A writer commits while the snapshot is open, without waiting for it.
        async with asyncio.timeout(10), sessions.begin() as other:
            await other.execute(text("INSERT INTO snapshot_probe VALUES (1)"))
        assert (await session.execute(count)).scalar_one() == 0
    async with sessions() as session:
        assert (await session.execute(count)).scalar_one() == 1


async def test_a_poll_answers_as_the_route_would_whatever_path_it_takes(
    gateway_factory: Any,
) -> None:
    """Well-formed polls take the fast path (``run_polls``), the rest the FastAPI route: the
    client sees one API either way, problems included."""
    gateway: Gateway = gateway_factory()
    async with _client(gateway.url) as http:
        run, _ = await _a_run(http)
        path = f"/v1/runs/{run['id']}"
        assert (await http.get(path)).json()["id"] == run["id"]
        assert (await http.get(f"{path}?wait=0")).status_code == 200
        for query in ("?wait=99", "?wait=abc", "?wait=-1", "?wait=nan"):
            refused = await http.get(path + query)
            assert refused.status_code == 422, (query, refused.text)
            assert refused.json()["code"] == "validation_failed"
        missing = await http.get("/v1/runs/no-such-run?wait=1")
        assert missing.status_code == 404
        assert missing.json()["code"] == "not_found"
        assert missing.headers["content-type"].startswith("application/problem+json")
        anonymous = await http.get(path, headers={"Authorization": "Bearer wrong"})
        assert anonymous.status_code == 401
        assert anonymous.json()["code"] == "unauthorized"
        assert "WWW-Authenticate" in anonymous.headers
        metrics = (await http.get("/metrics")).text
        assert 'route="/v1/runs/{run_id}",status="200"' in metrics

"""The runtime's tables on both SQLite and PostgreSQL: migrations, inbox, outbox."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, MetaData, inspect, text

from contracts import root_envelope
from services.runtime import inbox, outbox
from services.runtime.db import make_engine, make_sessions
from services.runtime.migrate import MigrationHistory, migrate
from services.runtime.tables import runtime_metadata
from tests.support.infra import sqlite_url

pytestmark = pytest.mark.integration


def event(key: str = "card-1"):  # type: ignore[no-untyped-def]
    return root_envelope(
        type="cardflow.card.submitted",
        schema_version=1,
        source="test",
        tenant_id="t1",
        key=key,
        data={},
    )


@pytest.fixture
async def engine(database_url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(database_url)
    await migrate(engine)
    yield engine
    await engine.dispose()


async def test_migrations_create_the_runtime_tables_and_are_idempotent(engine) -> None:  # type: ignore[no-untyped-def]
    await migrate(engine)  # a second start changes nothing
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert {"cardflow_inbox", "cardflow_outbox", "cardflow_runtime_alembic_version"} <= tables


async def test_engines_of_one_process_migrating_one_database_at_once_do_not_collide(
    database_url: str,
) -> None:
    await _migrate_at_once([database_url] * 3)
    await _assert_runtime_tables_at_head(database_url)


async def test_replica_processes_migrating_one_database_at_once_do_not_collide(
    database_url: str, tmp_path: Path
) -> None:
    """Three deployments' migration jobs (OS processes) on one fresh database at once."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARDFLOW_")}
    env |= {"CARDFLOW_DATABASE_URL": database_url, "CARDFLOW_STATE_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "services.runtime.migrate", "services.analysis.app:MIGRATIONS"]
    replicas = [
        await asyncio.create_subprocess_exec(
            *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        for _ in range(3)
    ]
    outputs = await asyncio.wait_for(asyncio.gather(*(r.communicate() for r in replicas)), 120)
    for replica, (output, _) in zip(replicas, outputs, strict=True):
        assert replica.returncode == 0, output.decode()
    await _assert_runtime_tables_at_head(database_url)


async def test_migrations_of_two_databases_in_one_process_at_once_stay_apart(
    tmp_path: Path,
) -> None:
    # alembic keeps the running migration in module globals: two migrations interleaving
    # at their awaits used to run each other's steps ("table already exists").
    urls = [sqlite_url(tmp_path / f"db{i}.db") for i in range(4)]
    await _migrate_at_once(urls)
    for url in urls:
        await _assert_runtime_tables_at_head(url)


async def _migrate_at_once(urls: list[str]) -> None:
    """One engine per url, all migrating concurrently in this process."""
    engines = [make_engine(url) for url in urls]
    try:
        # A task group, not gather: a failure cancels the others instead of leaving them
        # migrating behind the next test.
        async with asyncio.TaskGroup() as group:
            for e in engines:
                group.create_task(migrate(e))
    finally:
        for e in engines:
            await e.dispose()


async def _assert_runtime_tables_at_head(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            versions = (
                await conn.execute(text("SELECT version_num FROM cardflow_runtime_alembic_version"))
            ).all()
    finally:
        await engine.dispose()
    assert {"cardflow_inbox", "cardflow_outbox"} <= tables
    assert len(versions) == 1, versions


async def test_inbox_claims_an_event_once_per_consumer(engine) -> None:  # type: ignore[no-untyped-def]
    sessions = make_sessions(engine)
    async with sessions.begin() as session:
        assert await inbox.claim(session, "epics", "e1") is True
    async with sessions.begin() as session:
        assert await inbox.claim(session, "epics", "e1") is False
        assert await inbox.claim(session, "stories", "e1") is True


async def test_an_inbox_claim_rolls_back_with_its_transaction(engine) -> None:  # type: ignore[no-untyped-def]
    sessions = make_sessions(engine)

    async def handler_that_fails() -> None:
        async with sessions.begin() as session:
            assert await inbox.claim(session, "epics", "e2") is True
            raise RuntimeError("handler failed")

    with pytest.raises(RuntimeError):
        await handler_that_fails()
    async with sessions.begin() as session:
        assert not await inbox.was_handled(session, "epics", "e2")
        assert await inbox.claim(session, "epics", "e2") is True


async def test_outbox_rows_are_pending_in_order_until_marked(engine) -> None:  # type: ignore[no-untyped-def]
    sessions = make_sessions(engine)
    sent = [event(f"card-{i}") for i in range(3)]
    async with sessions.begin() as session:
        for e in sent:
            await outbox.enqueue(session, "cardflow.cards.submitted.v1", e)
    async with sessions.begin() as session:
        pending = await outbox.lock_pending(session, limit=10)
        assert [p.event_id for p in pending] == [e.id for e in sent]
        assert pending[0].headers["correlation_id"] == sent[0].correlation_id
        assert pending[0].key == "card-0"
        await outbox.mark_published(session, [pending[0].seq])
    async with sessions.begin() as session:
        assert await outbox.pending_count(session) == 2
        rest = await outbox.lock_pending(session, limit=10)
        # Recovery marks only exact (seq, event id) matches: a stale ledger cannot hide a row.
        await outbox.mark_published_exact(session, [(rest[0].seq, "another-db-event")])
        await outbox.mark_published_exact(session, [(rest[1].seq, rest[1].event_id)])
    async with sessions.begin() as session:
        assert [p.event_id for p in await outbox.lock_pending(session, 10)] == [sent[1].id]


async def test_an_event_is_enqueued_once(engine) -> None:  # type: ignore[no-untyped-def]
    sessions = make_sessions(engine)
    e = event()
    async with sessions.begin() as session:
        await outbox.enqueue(session, "t", e)
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        async with sessions.begin() as session:
            await outbox.enqueue(session, "t", e)


def _service_histories() -> list[tuple[MigrationHistory, MetaData]]:
    from services.analysis import store as analysis_store
    from services.analysis.app import MIGRATIONS as ANALYSIS
    from services.epics import store as epics_store
    from services.epics.app import MIGRATIONS as EPICS
    from services.gateway.app import MIGRATIONS as GATEWAY
    from services.gateway.readmodel import tables as gateway_tables
    from services.runtime.fleet import FLEET_HISTORY
    from services.runtime.fleet.tables import fleet_metadata
    from services.stories import store as stories_store
    from services.stories.app import MIGRATIONS as STORIES
    from services.subtasks import store as subtasks_store
    from services.subtasks.app import MIGRATIONS as SUBTASKS

    return [
        (FLEET_HISTORY, fleet_metadata),
        (ANALYSIS, analysis_store.metadata),
        (EPICS, epics_store.metadata),
        (STORIES, stories_store.metadata),
        (SUBTASKS, subtasks_store.metadata),
        (GATEWAY, gateway_tables.metadata),
    ]


async def test_every_services_migrations_build_exactly_its_declared_tables(
    database_url: str,
) -> None:
    """A table or column added to the code without a migration (or the reverse) shows here,
    not as a crash on the first production start."""
    import services.runtime.work.tables  # noqa: F401  (registers the work queue's tables)

    histories = _service_histories()
    engine = make_engine(database_url)
    try:
        await migrate(engine, *(history for history, _ in histories))
        every = [runtime_metadata, *(metadata for _, metadata in histories)]
        declared = {name for metadata in every for name in metadata.tables}

        def drift(connection: Connection) -> list[object]:
            found: list[object] = []
            for metadata in every:
                ours = set(metadata.tables)
                context = MigrationContext.configure(
                    connection,
                    opts={
                        "include_object": lambda obj, name, kind, reflected, _, ours=ours: (
                            kind != "table" or name in ours
                        ),
                        "compare_type": True,
                    },
                )
                found.extend(compare_metadata(context, metadata))
            return found

        async with engine.connect() as conn:
            assert await conn.run_sync(drift) == []
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert declared <= tables
    finally:
        await engine.dispose()


async def test_an_engine_opening_a_fresh_sqlite_file_while_another_writes_waits(
    tmp_path: Path,
) -> None:
    """Switching a file to WAL fails at once ("database is locked", no busy wait) while
    another connection writes: replicas opening a fresh file together raced on it."""
    path = tmp_path / "fresh.db"
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("CREATE TABLE t (a INTEGER)")
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO t VALUES (1)")
    release = threading.Timer(0.5, lambda: writer.execute("COMMIT"))
    release.start()
    try:
        engine = await asyncio.to_thread(make_engine, sqlite_url(path))
        try:
            async with engine.connect() as conn:
                mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar_one()
        finally:
            await engine.dispose()
    finally:
        release.join()
        writer.close()
    assert mode == "wal"

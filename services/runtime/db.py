"""The database engine and session factory every service uses (SQLite or PostgreSQL)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from services.runtime import metrics


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def make_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
            use_wal(Path(database))
        # Waiting on a lock beats failing at once: the relay and handlers share the file.
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin_immediate)
    else:
        engine = create_async_engine(
            url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=10
        )
    event.listen(engine.sync_engine, "before_cursor_execute", _count_statement)
    return engine


_READS = metrics.DB_STATEMENTS.labels(kind="read")
_WRITES = metrics.DB_STATEMENTS.labels(kind="write")


def _count_statement(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
    (_READS if statement.lstrip()[:6].upper() == "SELECT" else _WRITES).inc()


SNAPSHOT = "cardflow_snapshot"
"""Execution option of a read-only snapshot (``snapshot_read``): on SQLite, a deferred BEGIN."""


def _sqlite_begin_immediate(connection: Any) -> None:
    if connection.get_execution_options().get(SNAPSHOT):
        # WAL gives a deferred transaction one snapshot from its first read to its end,
        # and it waits for no writer: a reader must not queue behind the projection.
        connection.exec_driver_sql("BEGIN")
        return
    # Python's sqlite3 neither opens a transaction before DDL nor before a SELECT, so by
    # default migrations are not transactional and a read-then-write transaction can fail
    # on upgrade with "database is locked" regardless of busy_timeout. BEGIN IMMEDIATE takes
    # the write lock up front, waiting for it under busy_timeout: writers queue, none fail.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def use_wal(database: Path, *, timeout_s: float = 30.0) -> None:
    """Puts the SQLite file in WAL mode (readers run beside the one writer), once per file.

    WAL is a property of the file, kept across connections. Switching to it needs a moment
    of exclusive access, and SQLite answers "database is locked" at once, without waiting
    under busy_timeout, while another connection writes: replicas or two engines opening a
    fresh file together raced on it at connect. So the switch is done here, before any
    pooled connection exists, retried until a deadline; on a file already in WAL it is a
    no-op that takes no lock.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        connection = sqlite3.connect(database, timeout=timeout_s)
        try:
            mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() == "wal":
                return
            raise sqlite3.OperationalError(f"{database}: journal_mode stayed {mode!r}")
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
        finally:
            connection.close()
        time.sleep(0.02)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # synchronous=FULL keeps a committed transaction durable across a power cut, which
    # exactly-once effects rely on. (WAL is set per file by use_wal.)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
    # Hand transaction control to SQLAlchemy (see _sqlite_begin_immediate).
    dbapi_connection.isolation_level = None


def make_sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def snapshot_read(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A read-only session whose every read sees one snapshot of the database.

    PostgreSQL's default, READ COMMITTED, takes a new snapshot per statement: a row and its
    children read in two statements can disagree, so this asks for REPEATABLE READ. On
    SQLite (WAL) a deferred transaction reads one snapshot and takes no lock a writer waits
    for. Writing in it is a mistake: on SQLite it would fail under load ("database is
    locked" on upgrade), which is why every other transaction begins IMMEDIATE.
    """
    async with sessions() as session, session.begin():
        # Before the first statement: options apply when the connection is procured.
        postgres = session.bind is not None and session.bind.dialect.name == "postgresql"
        options = {"isolation_level": "REPEATABLE READ"} if postgres else {SNAPSHOT: True}
        await session.connection(execution_options=options)
        yield session


def dialect_insert(session: AsyncSession) -> Any:
    """``insert`` of the session's dialect, which has ``on_conflict_do_nothing/update``
    (PostgreSQL's and SQLite's share that interface)."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return postgresql.insert if dialect == "postgresql" else sqlite.insert

"""``python -m services.runtime.migrate``: a service's migrations without the service, as the
Kubernetes migration Job runs them, on SQLite."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from services.runtime.migrate.job import load_history, main
from tests.deploy.manifests import container_env, one, pod_spec


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def _versions(path: Path, history: str) -> list[str]:
    with sqlite3.connect(path) as db:
        return [row[0] for row in db.execute(f"SELECT version_num FROM {history}_alembic_version")]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in list(os.environ):
        if name.startswith("CARDFLOW_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CARDFLOW_STATE_DIR", str(tmp_path))
    return tmp_path


def test_migrates_the_service_and_the_fleet(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    service_db, fleet_db = clean_env / "analysis.db", clean_env / "fleet.db"
    monkeypatch.setenv("CARDFLOW_DATABASE_URL", f"sqlite+aiosqlite:///{service_db}")
    monkeypatch.setenv("CARDFLOW_FLEET_DATABASE_URL", f"sqlite+aiosqlite:///{fleet_db}")
    assert main(["services.analysis.app:MIGRATIONS"]) == 0
    service_tables, fleet_tables = _tables(service_db), _tables(fleet_db)
    assert {"cardflow_runtime_alembic_version", "analysis_alembic_version"} <= service_tables
    assert {"cardflow_inbox", "cardflow_outbox", "analysis_cards"} <= service_tables
    assert "cardflow_fleet_alembic_version" in fleet_tables
    assert "cardflow_fleet_alembic_version" not in service_tables
    head = _versions(service_db, "analysis")
    assert len(head) == 1
    out = capsys.readouterr().out
    assert str(service_db) in out
    assert str(fleet_db) in out

    # Idempotent: a second run (the next deploy, or a service starting after) changes nothing.
    assert main(["services.analysis.app:MIGRATIONS"]) == 0
    assert _versions(service_db, "analysis") == head
    assert _tables(service_db) == service_tables


def test_without_urls_it_migrates_the_services_sqlite_files(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the service itself: state_dir/data/<service>.db, and the shared fleet.db."""
    monkeypatch.setenv("CARDFLOW_SERVICE_NAME", "gateway")
    assert main(["services.gateway.app:MIGRATIONS"]) == 0
    assert "gateway_alembic_version" in _tables(clean_env / "data" / "gateway.db")
    assert "cardflow_fleet_alembic_version" in _tables(clean_env / "data" / "fleet.db")


def test_fleet_in_the_services_database_when_only_it_is_set(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service_db = clean_env / "stories.db"
    monkeypatch.setenv("CARDFLOW_DATABASE_URL", f"sqlite+aiosqlite:///{service_db}")
    assert main(["services.stories.app:MIGRATIONS"]) == 0
    assert {"stories_alembic_version", "cardflow_fleet_alembic_version"} <= _tables(service_db)


@pytest.mark.parametrize(
    "spec",
    [
        "services.analysis.app",
        "services.analysis.app:NOPE",
        "services.nope.app:MIGRATIONS",
        "services.analysis.app:build",
    ],
)
def test_a_wrong_history_is_a_usage_error(
    spec: str, clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([spec])
    assert exit_.value.code == 2
    assert spec in capsys.readouterr().err
    assert not list(clean_env.rglob("*.db")), "nothing migrated"


def test_load_history_returns_the_services_own() -> None:
    from services.epics.app import MIGRATIONS

    assert load_history("services.epics.app:MIGRATIONS") is MIGRATIONS


@pytest.mark.slow
def test_the_migration_jobs_commands_run(tmp_path: Path) -> None:
    """Each Job container's own command and environment, as a process (all at once, as the
    Job's pod runs them); its databases made SQLite files here."""
    containers: list[dict[str, Any]] = pod_spec(one("Job", "migrate"))["containers"]
    processes = {}
    for container in containers:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CARDFLOW_")}
        env.update(container_env(container))
        name = container["name"]
        env["CARDFLOW_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / name}.db"
        env["CARDFLOW_FLEET_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path}/fleet.db"
        env["CARDFLOW_STATE_DIR"] = str(tmp_path / "state")
        command = [sys.executable if a == "python" else a for a in container["command"]]
        processes[name] = subprocess.Popen(
            command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    for name, process in processes.items():
        _, stderr = process.communicate(timeout=180)
        assert process.returncode == 0, f"{name}: {stderr.decode(errors='replace')}"
        assert f"{name}_alembic_version" in _tables(tmp_path / f"{name}.db")
    assert "cardflow_fleet_alembic_version" in _tables(tmp_path / "fleet.db")

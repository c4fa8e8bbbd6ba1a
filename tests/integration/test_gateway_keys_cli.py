"""``python -m services.gateway.keys``: create, list and revoke API keys in the gateway's
database (SQLite and PostgreSQL), as an operator rotating keys does."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.gateway.keys import main

pytestmark = pytest.mark.integration


@pytest.fixture
def gateway_db(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    for name in list(os.environ):
        if name.startswith("CARDFLOW_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CARDFLOW_DATABASE_URL", database_url)
    monkeypatch.setenv("CARDFLOW_STATE_DIR", str(tmp_path))
    return database_url


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_keys_are_listed_without_secrets_and_revoked_ones_only_on_request(
    gateway_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, old = run(capsys, "create", "--tenant", "acme", "--name", "ci-2026-10")
    _, new = run(capsys, "create", "--tenant", "acme", "--name", "ci-2026-11")
    _, other = run(capsys, "create", "--tenant", "globex")
    old_id, new_id, other_id = (k.strip().split("_")[1] for k in (old, new, other))

    code, listed = run(capsys, "list")
    assert code == 0
    lines = listed.splitlines()
    assert lines[0].split() == ["KEY", "ID", "TENANT", "NAME", "CREATED", "REVOKED"]
    assert [line.split()[:3] for line in lines[1:]] == [
        [old_id, "acme", "ci-2026-10"],
        [new_id, "acme", "ci-2026-11"],
        [other_id, "globex", "-"],
    ]
    for key in (old, new, other):
        assert key.strip().split("_", 2)[2] not in listed, "a secret was printed"

    assert run(capsys, "revoke", old_id) == (0, f"revoked {old_id}\n")
    _, active = run(capsys, "list", "--tenant", "acme")
    assert [line.split()[0] for line in active.splitlines()[1:]] == [new_id]
    _, everything = run(capsys, "list", "--tenant", "acme", "--all")
    revoked_row = next(line for line in everything.splitlines() if line.startswith(old_id))
    assert revoked_row.split()[-1].endswith("Z"), revoked_row  # its revocation time
    assert run(capsys, "revoke", old_id)[0] == 1, "revoking twice says there is no such key"

"""The committed schemas are what the models generate, and no published version is broken."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contracts.compat import breaking_changes
from contracts.schema import PUBLISHED_DIR, SCHEMAS_DIR, generate_schemas, stale_files

PUBLISHED = sorted(PUBLISHED_DIR.glob("*.json"))


def test_committed_schemas_match_the_models() -> None:
    stale = stale_files(SCHEMAS_DIR)
    assert not stale, f"stale generated schemas {stale}: run `make schemas` and commit them"


def test_something_is_published() -> None:
    # Guards the guard: an empty or moved published/ would make the next test vacuous.
    assert any(p.name.startswith("envelope.v") for p in PUBLISHED)


@pytest.mark.parametrize("published", PUBLISHED, ids=lambda p: p.name)
def test_published_version_is_not_broken(published: Path) -> None:
    current = generate_schemas().get(published.name)
    assert current is not None, (
        f"{published.name} was published but its model is no longer registered in "
        "contracts/registry.py; readers of it still exist"
    )
    problems = breaking_changes(json.loads(published.read_text(encoding="utf-8")), current)
    assert not problems, (
        f"breaking change to published {published.name}: {problems}. Never edit the published "
        "file; make a new version of the model and a new .v2 topic instead."
    )


def test_guard_fails_on_the_real_envelope() -> None:
    published = json.loads((PUBLISHED_DIR / "envelope.v1.json").read_text(encoding="utf-8"))
    edited = json.loads(json.dumps(generate_schemas()["envelope.v1.json"]))
    del edited["properties"]["tenant_id"]
    edited["properties"]["run_id"] = {"type": "integer"}
    edited["required"].append("project_id")
    assert sorted(breaking_changes(published, edited)) == [
        "project_id: field is newly required",
        "run_id: type changed from null|string to integer",
        "tenant_id: field removed",
    ]

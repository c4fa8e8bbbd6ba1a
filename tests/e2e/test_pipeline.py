"""End to end: five services as OS processes on a real broker and real databases, driven
through the HTTP API as a client would (offline LLM provider)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.stack import PipelineStack, wait_for_run

pytestmark = [pytest.mark.e2e, pytest.mark.kafka]

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "field-service-prd.md"


@pytest.fixture(scope="module")
def stack_env() -> dict[str, str]:
    # A little simulated latency, so items are seen in flight.
    return {"CARDFLOW_LLM_OFFLINE_LATENCY_S": "0.2"}


STAGE_KEYS = ("analysis", "epics", "stories", "subtasks")


def start_pipeline(
    client: httpx.Client, headers: Mapping[str, str] = {}
) -> tuple[str, dict[str, Any]]:
    project = client.post("/v1/projects", json={"name": "Field service"}).json()
    with SAMPLE.open("rb") as handle:
        upload = client.post(
            f"/v1/projects/{project['id']}/uploads",
            files={"file": ("field-service-prd.md", handle, "text/markdown")},
        )
    assert upload.status_code == 202, upload.text
    assert len(upload.json()["cards"]) >= 10
    response = client.post(
        f"/v1/projects/{project['id']}/runs",
        json={"stage": "pipeline"},
        headers={"Idempotency-Key": f"first-run-{project['id']}", **headers},
    )
    assert response.status_code == 202, response.text
    assert response.headers["Location"] == f"/v1/runs/{response.json()['id']}"
    return project["id"], response.json()


def check_snapshots(snapshots: list[dict[str, Any]]) -> None:
    """Counts never go backwards, always add up, and the version grows."""
    previous: dict[str, Any] | None = None
    for run in snapshots:
        counts = run["counts"]
        parts = ("pending", "running", "succeeded", "failed", "cancelled")
        assert sum(counts[p] for p in parts) == counts["total"], counts
        for key in ("total", *parts):
            assert counts[key] == sum(run["stages"][s][key] for s in STAGE_KEYS), run["stages"]
        if previous is not None:
            assert run["version"] > previous["version"]
            for stage in STAGE_KEYS:
                now, before = run["stages"][stage], previous["stages"][stage]
                for key in ("total", "succeeded", "failed", "cancelled"):
                    assert now[key] >= before[key], (stage, key, before, now)
        previous = run


def test_a_document_becomes_a_complete_backlog_with_live_progress(stack: PipelineStack) -> None:
    with stack.client() as client:
        project_id, created = start_pipeline(client)
        run_id = created["id"]
        assert created["stages"]["analysis"]["total"] >= 10, "total known before any LLM call"

        again = client.post(
            f"/v1/projects/{project_id}/runs",
            json={"stage": "pipeline"},
            headers={"Idempotency-Key": f"first-run-{project_id}"},
        )
        assert again.json()["id"] == run_id
        other = client.post(
            f"/v1/projects/{project_id}/runs",
            json={"stage": "analysis"},
            headers={"Idempotency-Key": f"first-run-{project_id}"},
        )
        assert other.status_code == 422
        assert other.headers["content-type"].startswith("application/problem+json")
        assert other.json()["code"] == "idempotency_conflict"

        etag = f'"v{created["version"]}"'
        snapshots = [created, *wait_for_run(client, run_id, etag=etag)]
        check_snapshots(snapshots)
        final = snapshots[-1]
        assert final["status"] == "succeeded", (final, stack.logs())
        assert any(s["in_progress"] for s in snapshots), "items in flight were never visible"
        assert final["finished_at"]
        assert final["eta_seconds"] == 0
        assert final["counts"]["succeeded"] == final["counts"]["total"]

        unchanged = client.get(
            f"/v1/runs/{run_id}", headers={"If-None-Match": f'"v{final["version"]}"'}
        )
        assert unchanged.status_code == 304

        backlog = check_backlog(client, project_id)
        assert final["stages"]["epics"]["succeeded"] == len(backlog["epics"])
        assert final["stages"]["stories"]["succeeded"] == len(backlog["epics"])
        assert final["stages"]["subtasks"]["succeeded"] == sum(
            len(e["stories"]) for e in backlog["epics"]
        )

        items = client.get(f"/v1/runs/{run_id}/items").json()["items"]
        assert all(i["provenance"]["offline"] for i in items)
        log = client.get(f"/v1/runs/{run_id}/log").json()["log"]
        assert any("stage finished" in line["message"] for line in log)

        runs = client.get(f"/v1/projects/{project_id}/runs").json()["runs"]
        assert runs[0]["id"] == run_id


def check_backlog(client: httpx.Client, project_id: str) -> dict[str, Any]:
    """Every story under an existing epic, every subtask under an existing story, no
    duplicates, KPIs equal to what is listed, and the three exports agree."""
    tree = client.get(f"/v1/projects/{project_id}/subtasks").json()
    epics = [e["epic"] for e in tree["epics"]]
    stories = [s["story"] for e in tree["epics"] for s in e["stories"]]
    subtasks = [t for e in tree["epics"] for s in e["stories"] for t in s["subtasks"]]
    assert epics
    assert all(e["stories"] for e in tree["epics"])
    assert all(s["subtasks"] for e in tree["epics"] for s in e["stories"])
    for ids in (
        [e["epic_id"] for e in epics],
        [s["story_id"] for s in stories],
        [t["subtask_id"] for t in subtasks],
    ):
        assert len(ids) == len(set(ids)), "duplicates in the backlog"
    epic_ids = {e["epic_id"] for e in epics}
    story_ids = {s["story_id"] for s in stories}
    assert all(s["epic_id"] in epic_ids for s in stories)
    assert all(t["story_id"] in story_ids for t in subtasks)

    project = client.get(f"/v1/projects/{project_id}").json()
    cards = client.get(f"/v1/projects/{project_id}/cards").json()["cards"]
    coverage = client.get(f"/v1/projects/{project_id}/quality").json()["coverage"]
    assert project["kpis"] == {
        "cards": len(cards),
        "cards_analyzed": sum(1 for c in cards if c["analysis_status"] == "analyzed"),
        "epics": len(epics),
        "stories": len(stories),
        "subtasks": len(subtasks),
        # The KPI counts coverage as the quality report does (one function behind both).
        "requirements": coverage["total"],
        "requirements_covered": coverage["covered"],
        "coverage": coverage["share"],
    }
    assert project["kpis"]["cards_analyzed"] == len(cards)
    listed = client.get(f"/v1/projects/{project_id}/epics").json()["epics"]
    assert [e["story_count"] for e in listed] == [len(e["stories"]) for e in tree["epics"]]

    exported = client.get(f"/v1/projects/{project_id}/export", params={"format": "json"}).json()
    assert exported["epics"] == tree["epics"]
    rows = list(
        csv.DictReader(
            io.StringIO(
                client.get(f"/v1/projects/{project_id}/export", params={"format": "csv"}).text
            )
        )
    )
    by_type = {
        kind: [r["id"] for r in rows if r["type"] == kind] for kind in ("epic", "story", "subtask")
    }
    assert sorted(by_type["epic"]) == sorted(epic_ids)
    assert sorted(by_type["story"]) == sorted(story_ids)
    assert sorted(by_type["subtask"]) == sorted(t["subtask_id"] for t in subtasks)
    markdown = client.get(f"/v1/projects/{project_id}/export", params={"format": "markdown"}).text
    assert all(e["title"] in markdown for e in epics)
    return tree


def test_rerunning_each_stage_updates_in_place(stack: PipelineStack) -> None:
    with stack.client() as client:
        project_id, created = start_pipeline(client)
        assert wait_for_run(client, created["id"])[-1]["status"] == "succeeded"
        before = client.get(f"/v1/projects/{project_id}").json()["kpis"]
        for stage in ("analysis", "epics", "stories", "subtasks"):
            run = client.post(f"/v1/projects/{project_id}/runs", json={"stage": stage}).json()
            final = wait_for_run(client, run["id"])[-1]
            assert final["status"] == "succeeded", (stage, final)
            assert client.get(f"/v1/projects/{project_id}").json()["kpis"] == before, stage
        check_backlog(client, project_id)


def test_another_tenant_sees_nothing_of_this_one(stack: PipelineStack) -> None:
    with stack.client() as client:
        project_id, created = start_pipeline(client)
        run_id = created["id"]
    other_key = mint_key(stack, "other-tenant")
    with stack.client(other_key) as other:
        assert other.get("/v1/projects").json() == {"projects": []}
        for path in (
            f"/v1/projects/{project_id}",
            f"/v1/projects/{project_id}/cards",
            f"/v1/projects/{project_id}/runs",
            f"/v1/projects/{project_id}/epics",
            f"/v1/projects/{project_id}/stories",
            f"/v1/projects/{project_id}/subtasks",
            f"/v1/projects/{project_id}/export",
            f"/v1/runs/{run_id}",
            f"/v1/runs/{run_id}/items",
            f"/v1/runs/{run_id}/log",
        ):
            response = other.get(path)
            assert response.status_code == 404, path
            assert response.json()["code"] == "not_found"
        assert (
            other.post(f"/v1/projects/{project_id}/runs", json={"stage": "analysis"}).status_code
            == 404
        )
        assert (
            other.post(
                f"/v1/projects/{project_id}/cards", json={"cards": [{"title": "x"}]}
            ).status_code
            == 404
        )
    with stack.client("not-a-key") as anonymous:
        assert anonymous.get("/v1/projects").status_code == 401


def mint_key(stack: PipelineStack, tenant: str) -> str:
    import subprocess
    import sys

    gateway = stack.processes["gateway"]
    result = subprocess.run(
        [sys.executable, "-m", "services.gateway.keys", "create", "--tenant", tenant],
        env={**__import__("os").environ, **gateway.env},
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    return result.stdout.strip()


BAD_UPLOADS = [
    ("big.md", b"# x\n" + b"a" * (5 * 1024 * 1024 + 10), 413, "upload_too_large"),
    ("cards.pdf", b"%PDF-1.7 binary", 415, "unsupported_media_type"),
    ("binary.txt", b"\x00\x01\x02\xff\xfe" * 100, 415, "unreadable_file"),
    ("broken.json", b'{"cards": [ {"title": ', 422, "input_invalid"),
    ("empty.md", b"   \n\n", 422, "no_cards"),
    (
        "long.json",
        json.dumps([{"title": "t", "body": "x" * 20_001}]).encode(),
        422,
        "card_too_long",
    ),
    (
        "many.json",
        json.dumps([{"title": f"t{i}", "body": "b"} for i in range(2001)]).encode(),
        413,
        "too_many_cards",
    ),
]


def test_bad_uploads_get_a_clear_error_and_lose_nothing(stack: PipelineStack) -> None:
    with stack.client() as client:
        project = client.post("/v1/projects", json={"name": "bad uploads"}).json()
        good = client.post(
            f"/v1/projects/{project['id']}/cards",
            json={"cards": [{"title": "Keep me", "body": "Accepted before."}]},
        )
        assert good.status_code == 202
        for name, data, status, code in BAD_UPLOADS:
            response = client.post(
                f"/v1/projects/{project['id']}/uploads", files={"file": (name, data)}
            )
            assert response.status_code == status, (name, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["code"] == code, name
        bad_cards = client.post(
            f"/v1/projects/{project['id']}/cards", json={"cards": [{"body": "no title"}]}
        )
        assert bad_cards.status_code == 422
        assert bad_cards.json()["code"] == "validation_failed"
        assert client.get("/readyz").status_code == 200
        cards = client.get(f"/v1/projects/{project['id']}/cards").json()["cards"]
        assert [c["title"] for c in cards] == ["Keep me"]

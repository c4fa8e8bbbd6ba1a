"""The quality routes on a real gateway (its app, its migrations, its projection) over SQLite
and PostgreSQL: the read model is filled from real events, then read over HTTP with the
tenant rules of every route."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from contracts import Envelope, root_envelope
from contracts.backlog import (
    CardAnalysis,
    CardKind,
    OpenQuestion,
    Priority,
    Provenance,
    Requirement,
    SourceSpan,
)
from contracts.events import CardAnalyzed, EpicGenerated, StoriesGenerated, SubtasksGenerated
from services.gateway import commands
from services.gateway.app import MIGRATIONS, create_app
from services.gateway.readmodel.projection import Projection
from services.gateway.readmodel.watch import RunWatch
from services.runtime.migrate import migrate
from services.runtime.settings import Settings
from tests.unit.gateway_samples import epic, story, subtask

pytestmark = pytest.mark.integration

KEY = "quality-test-key"
TENANT = "local"  # the bootstrap key's tenant
PROVENANCE = Provenance(provider="offline", model="offline", prompt_version="v1", offline=True)
BODY = (
    "FR-01: Technicians see their jobs for the day on their phone.\n"
    "FR-02: Dispatchers assign a job to the nearest qualified technician.\n"
    "Which wording do we use for commercial versus residential customers? TBD\n"
)
QUESTION = "Which wording do we use for commercial versus residential customers?"


@dataclass
class Gateway:
    http: httpx.AsyncClient
    project_id: str
    card_id: str
    other_project_id: str


def _envelope(type_: str, project_id: str, key: str, data: dict[str, object]) -> Envelope:
    return root_envelope(
        type=type_,
        schema_version=1,
        source="test",
        tenant_id=TENANT,
        project_id=project_id,
        key=key,
        data=data,
    )


def _analysis(card_id: str) -> CardAnalysis:
    def requirement(n: int, line: str) -> Requirement:
        start = BODY.index(line)
        return Requirement(
            id=f"{card_id}:R{n}",
            text=line.partition(": ")[2],
            source_span=SourceSpan(start=start, end=start + len(line)),
            author_id=line.partition(":")[0],
        )

    start = BODY.index(QUESTION)
    return CardAnalysis(
        card_id=card_id,
        summary="Jobs on the phone, assigned by dispatchers.",
        kind=CardKind.FEATURE,
        personas=["technician", "dispatcher"],
        requirements=[
            requirement(1, "FR-01: Technicians see their jobs for the day on their phone."),
            requirement(2, "FR-02: Dispatchers assign a job to the nearest qualified technician."),
        ],
        priority=Priority.P1,
        open_questions=[QUESTION],
        questions=[
            OpenQuestion(text=QUESTION, source_span=SourceSpan(start=start, end=start + 70))
        ],
    )


async def _fill(app: object, project_id: str, card_id: str) -> None:
    """The events the stages would publish, projected by the gateway's own projection."""
    sessions = app.state.service.sessions  # type: ignore[attr-defined]
    projection = Projection(RunWatch())
    analysed = CardAnalyzed(
        card_id=card_id,
        project_id=project_id,
        title="Mobile app",
        analysis=_analysis(card_id),
        provenance=PROVENANCE,
        analysis_version="a1",
    )
    the_epic = epic(
        "e1", 0, "Mobile jobs", project_id=project_id, requirement_ids=[f"{card_id}:R1"]
    )
    stories = [
        story(
            "s1", "e1", 0, "See my jobs for the day on my phone", requirement_ids=[f"{card_id}:R1"]
        ),
        story(
            "s2", "e1", 1, "See my jobs for the day on my phone!", requirement_ids=[f"{card_id}:R1"]
        ),
        story(
            "s3",
            "e1",
            2,
            "> Priority: P0 — Core feature, required for MVP",
            requirement_ids=[f"{card_id}:R2"],
            estimate_points=13,
            acceptance_criteria=[],
        ),
    ]
    subtasks = [subtask("t1", "s1", 0, "Build the job list API", estimate_hours=20)]
    events = [
        (projection.apply_card_analyzed, CardAnalyzed.TYPE, card_id, analysed),
        (
            projection.apply_epic_generated,
            EpicGenerated.TYPE,
            "e1",
            EpicGenerated(epic=the_epic, provenance=PROVENANCE),
        ),
        (
            projection.apply_stories_generated,
            StoriesGenerated.TYPE,
            "e1",
            StoriesGenerated(
                project_id=project_id, epic_id="e1", stories=stories, provenance=PROVENANCE
            ),
        ),
        (
            projection.apply_subtasks_generated,
            SubtasksGenerated.TYPE,
            "s1",
            SubtasksGenerated(
                project_id=project_id,
                epic_id="e1",
                story_id="s1",
                subtasks=subtasks,
                provenance=PROVENANCE,
            ),
        ),
    ]
    for apply, type_, key, payload in events:
        async with sessions.begin() as session:
            await apply(session, _envelope(type_, project_id, key, payload.model_dump(mode="json")))


@pytest.fixture
async def gateway(database_url: str, tmp_path: Path) -> AsyncIterator[Gateway]:
    settings = Settings(
        service_name="gateway",
        database_url=database_url,
        state_dir=tmp_path,
        bootstrap_api_key=KEY,  # type: ignore[arg-type]
    )
    app = create_app(settings)
    service = app.state.service
    # The HTTP routes and the projection need only the database: no broker is started.
    await migrate(service.engine, MIGRATIONS)
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://gateway", headers=headers
    ) as http:
        project_id = (await http.post("/v1/projects", json={"name": "Field service"})).json()["id"]
        added = await http.post(
            f"/v1/projects/{project_id}/cards",
            json={"cards": [{"title": "Mobile app", "body": BODY}]},
        )
        card_id = added.json()["card_ids"][0]
        async with service.sessions.begin() as session:
            other = await commands.create_project(session, "another-tenant", "Theirs", "")
        await _fill(app, project_id, card_id)
        yield Gateway(http, project_id, card_id, other)
    await service.engine.dispose()


async def test_quality_report_over_http(gateway: Gateway) -> None:
    response = await gateway.http.get(f"/v1/projects/{gateway.project_id}/quality")
    assert response.status_code == 200
    report = response.json()
    card = gateway.card_id
    # R1 is cited by two stories; R2 only by a junk one, so it is not covered.
    assert report["coverage"] == {"covered": 1, "total": 2, "share": 0.5}
    assert [r["requirement_id"] for r in report["uncovered"]] == [f"{card}:R2"]
    assert report["uncovered"][0]["author_id"] == "FR-02"
    cited = report["requirements"][0]
    assert [s["story_id"] for s in cited["stories"]] == ["s1", "s2"]
    counts = report["counts"]
    assert counts["duplicates"] == 1
    assert {d["reason"] for d in report["duplicates"]} == {"same_title"}
    assert [(j["kind"], j["id"]) for j in report["junk"]] == [("story", "s3")]
    assert report["junk"][0]["reason"].startswith("markup")
    assert [u["story_id"] for u in report["untestable"]] == ["s3"]
    assert [(o["kind"], o["id"]) for o in report["oversized"]] == [
        ("story", "s3"),
        ("subtask", "t1"),
    ]
    assert counts["open_questions"] == 1

    project = (await gateway.http.get(f"/v1/projects/{gateway.project_id}")).json()
    kpis = project["kpis"]
    assert (kpis["requirements"], kpis["requirements_covered"], kpis["coverage"]) == (2, 1, 0.5)

    paged = await gateway.http.get(
        f"/v1/projects/{gateway.project_id}/quality", params={"limit": 1, "offset": 1}
    )
    assert [r["requirement_id"] for r in paged.json()["requirements"]] == [f"{card}:R2"]
    assert paged.json()["counts"]["requirements"] == 2


async def test_questions_with_card_and_span(gateway: Gateway) -> None:
    response = await gateway.http.get(f"/v1/projects/{gateway.project_id}/questions")
    assert response.status_code == 200
    body = response.json()
    assert body["total"] == 1
    assert body["next_offset"] is None
    (question,) = body["questions"]
    assert (question["card_id"], question["card_title"]) == (gateway.card_id, "Mobile app")
    span = question["source_span"]
    assert BODY[span["start"] :].startswith("Which wording")


async def test_exports_carry_the_quality_section(gateway: Gateway) -> None:
    base = f"/v1/projects/{gateway.project_id}/export"
    data = (await gateway.http.get(base, params={"format": "json"})).json()
    assert data["quality"]["coverage"]["share"] == 0.5
    assert [q["text"] for q in data["open_questions"]] == [QUESTION]
    rows = list(
        csv.DictReader(io.StringIO((await gateway.http.get(base, params={"format": "csv"})).text))
    )
    assert {r["type"] for r in rows} == {
        "epic",
        "story",
        "subtask",
        "quality",
        "finding",
        "question",
    }
    assert [r["title"] for r in rows if r["type"] == "question"] == [QUESTION]
    markdown = (await gateway.http.get(base, params={"format": "markdown"})).text
    assert "## Quality" in markdown
    assert "## Open questions" in markdown


@pytest.mark.parametrize("path", ["quality", "questions"])
async def test_another_tenants_project_is_not_found(gateway: Gateway, path: str) -> None:
    response = await gateway.http.get(f"/v1/projects/{gateway.other_project_id}/{path}")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "not_found"
    missing = await gateway.http.get(f"/v1/projects/nope/{path}")
    assert missing.status_code == 404


async def test_bad_paging_is_a_problem(gateway: Gateway) -> None:
    response = await gateway.http.get(
        f"/v1/projects/{gateway.project_id}/quality", params={"limit": 0}
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    unauthenticated = await gateway.http.get(
        f"/v1/projects/{gateway.project_id}/quality", headers={"Authorization": "Bearer wrong"}
    )
    assert unauthenticated.status_code == 401

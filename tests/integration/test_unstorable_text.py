"""Text a database cannot store gets a 4xx naming the field, never a 500, on both databases:
a lone surrogate escape (``"\\ud800"``: valid JSON, not UTF-8) and a NUL (PostgreSQL refuses
it in text), in a JSON body and in a JSON upload; a NUL in an uploaded file's name is
dropped from the name. A real uvicorn server with the gateway's app and migrations."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from services.gateway.app import create_app
from services.runtime.settings import Settings
from tests.support.infra import sqlite_url
from tests.support.served import served

pytestmark = pytest.mark.integration

KEY = "unstorable-text-test-key"
SURROGATE = '"\\ud800"'
NUL = '"a\\u0000b"'


@pytest.fixture
async def http(database_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        service_name="gateway",
        database_url=database_url,
        fleet_database_url=sqlite_url(tmp_path / "fleet.db"),
        state_dir=tmp_path,
        bootstrap_api_key=KEY,  # type: ignore[arg-type]
    )
    with served(create_app(settings)) as url:
        headers = {"Authorization": f"Bearer {KEY}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
            yield client


async def _post_json(http: httpx.AsyncClient, path: str, text: str) -> httpx.Response:
    """``text`` as it is: an escape in it reaches the server's JSON parser untouched."""
    return await http.post(path, content=text, headers={"Content-Type": "application/json"})


async def _project(http: httpx.AsyncClient) -> str:
    created = await _post_json(http, "/v1/projects", '{"name": "Texts"}')
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def _refused_at(response: httpx.Response, loc: list[str | int]) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == "validation_failed"
    assert [e["loc"] for e in problem["errors"]] == [loc]


@pytest.mark.parametrize("bad", [SURROGATE, NUL], ids=["surrogate", "nul"])
async def test_a_project_name_that_is_not_text_is_422(http: httpx.AsyncClient, bad: str) -> None:
    response = await _post_json(http, "/v1/projects", '{"name": ' + bad + "}")
    _refused_at(response, ["body", "name"])
    listed = await http.get("/v1/projects")
    assert listed.status_code == 200, listed.text
    assert listed.json()["projects"] == []


@pytest.mark.parametrize("bad", [SURROGATE, NUL], ids=["surrogate", "nul"])
async def test_cards_holding_what_is_not_text_are_422_and_the_project_keeps_its_cards(
    http: httpx.AsyncClient, bad: str
) -> None:
    project_id = await _project(http)
    kept = await _post_json(
        http, f"/v1/projects/{project_id}/cards", '{"cards": [{"title": "Export a backlog"}]}'
    )
    assert kept.status_code in (200, 201, 202), kept.text
    response = await _post_json(
        http,
        f"/v1/projects/{project_id}/cards",
        '{"cards": [{"title": "Fine"}, {"title": "Also fine", "body": ' + bad + "}]}",
    )
    _refused_at(response, ["body", "cards", 1, "body"])
    cards = await http.get(f"/v1/projects/{project_id}/cards")
    assert cards.status_code == 200, cards.text
    assert [c["title"] for c in cards.json()["cards"]] == ["Export a backlog"]


@pytest.mark.parametrize("bad", [SURROGATE, NUL], ids=["surrogate", "nul"])
async def test_a_json_upload_holding_what_is_not_text_is_refused(
    http: httpx.AsyncClient, bad: str
) -> None:
    project_id = await _project(http)
    document = '[{"title": "Export", "body": ' + bad + ', "id": ' + bad + "}]"
    response = await http.post(
        f"/v1/projects/{project_id}/uploads",
        files={"file": ("cards.json", document.encode(), "application/json")},
    )
    assert 400 <= response.status_code < 500, response.text
    problem = response.json()
    assert problem["code"] == "input_invalid"
    assert "not text" in problem["detail"]
    cards = await http.get(f"/v1/projects/{project_id}/cards")
    assert cards.json()["cards"] == []


async def test_a_nul_in_an_uploaded_file_name_is_dropped(http: httpx.AsyncClient) -> None:
    project_id = await _project(http)
    response = await http.post(
        f"/v1/projects/{project_id}/uploads",
        files={"file": ("no\x00tes.md", b"# Notes\n\nThe system shall export a backlog.\n")},
    )
    assert response.status_code == 202, response.text
    assert response.json()["cards"]

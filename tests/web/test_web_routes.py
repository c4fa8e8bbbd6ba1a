"""The gateway's web routes on their own (no stack, no browser): the shell, its headers and
configuration, the static files, and that no key or secret is ever served."""

from __future__ import annotations

import json
import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.gateway.web import routes
from services.runtime.settings import Settings

SECRET_KEY = "local-bootstrap-key-not-to-be-served"
LLM_KEY = "sk-llm-key-not-to-be-served"


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()
    app.state.settings = Settings(
        service_name="gateway",
        bootstrap_api_key=SECRET_KEY,
        llm_base_url="http://llm.internal.example:8080/v1",
        llm_api_key=LLM_KEY,
        llm_model="gpt-4o-mini",
        llm_stage_models={"stories": "gpt-4o"},
    )
    app.include_router(routes.router)
    return TestClient(app)


def config_of(html: str) -> dict:  # type: ignore[type-arg]
    found = re.search(r'<script type="application/json" id="cardflow-config">(.*?)</script>', html)
    assert found, html
    return dict(json.loads(found.group(1)))


def test_the_shell_is_public_strict_and_holds_no_secret(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    html = response.text
    for secret in (SECRET_KEY, LLM_KEY, "llm.internal.example"):
        assert secret not in html
    assert "<script>" not in html, "no inline script: the policy would block it"
    config = config_of(html)
    assert config["provider"] == "openai-compatible"
    assert config["models"] == {
        "analysis": "gpt-4o-mini",
        "epics": "gpt-4o-mini",
        "stories": "gpt-4o",
        "subtasks": "gpt-4o-mini",
    }
    assert config["upload"]["max_file_bytes"] == Settings().upload_max_file_bytes
    # The page is served the pipeline's shape; its scripts spell none of it.
    assert config["pipeline"]["stages"] == ["analysis", "epics", "stories", "subtasks"]
    assert config["pipeline"]["scope"]["stories"] == "epics"
    assert set(config["pipeline"]["terminal_run_statuses"]) == {
        "succeeded",
        "partial",
        "failed",
        "cancelled",
    }


def test_deep_links_get_the_same_shell(client: TestClient) -> None:
    for path in ("/projects/p1", "/projects/p1/runs/r1"):
        response = client.get(path)
        assert response.status_code == 200
        assert 'id="cardflow-config"' in response.text


def test_static_files_are_served_with_etags_and_revalidated(client: TestClient) -> None:
    response = client.get("/web/js/app.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.headers["cache-control"] == "no-cache"
    etag = response.headers["etag"]
    again = client.get("/web/js/app.js", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert client.get("/web/app.css").headers["content-type"].startswith("text/css")
    # The shell names its files with the version of their content.
    version = routes.ASSETS.version()
    assert f"/web/js/app.js?v={version}" in client.get("/").text


@pytest.mark.parametrize(
    "path",
    [
        "/web/nothing.js",
        "/web/../routes.py",
        "/web/%2e%2e/routes.py",
        "/web/..%2Froutes.py",
        "/web/js",
    ],
)
def test_nothing_outside_static_is_served(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 404


def test_the_shell_escapes_its_configuration() -> None:
    html = routes.render_shell(
        "<script>__CONFIG__</script>", {"x": "</script><script>alert(1)</script>"}, "v"
    )
    assert "</script><script>" not in html
    assert json.loads(html.removeprefix("<script>").removesuffix("</script>")) == {
        "x": "</script><script>alert(1)</script>"
    }

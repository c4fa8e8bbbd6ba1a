"""The quality and questions panels of the project page, in a browser (headless Debian
Chromium, Playwright) against the whole stack: after a real pipeline run over the sample PRD,
each panel shows the numbers and items the gateway's API gives, works from the keyboard, and
passes axe-core."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.stack import API_KEY, PipelineStack
from tests.web.conftest import assert_accessible, new_page

pytestmark = [pytest.mark.web, pytest.mark.e2e, pytest.mark.kafka, pytest.mark.slow]

STACK_BACKENDS = ("sqlite",)
SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "field-service-prd.md"
RUN_TIMEOUT_S = 480.0
TERMINAL = ("succeeded", "partial", "failed", "cancelled")


@pytest.fixture
def api(stack: PipelineStack) -> Iterator[httpx.Client]:
    with stack.client(timeout=60.0) as client:
        yield client


def finished_project(api: httpx.Client) -> str:
    project = api.post("/v1/projects", json={"name": "Field service (quality)"}).json()
    with SAMPLE.open("rb") as handle:
        upload = api.post(
            f"/v1/projects/{project['id']}/uploads",
            files={"file": (SAMPLE.name, handle, "text/markdown")},
        )
    assert upload.status_code == 202, upload.text
    run = api.post(f"/v1/projects/{project['id']}/runs", json={"stage": "pipeline"}).json()
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while run["status"] not in TERMINAL:
        assert time.monotonic() < deadline, f"the run did not finish: {run}"
        # A long poll: the gateway answers when the run changes.
        run = api.get(f"/v1/runs/{run['id']}", params={"wait": 25}).json()
    assert run["status"] == "succeeded", run
    return str(project["id"])


def figure(page: Page, name: str) -> Any:
    return page.locator(f"[data-testid=quality-figures] [data-figure={name}]")


def test_quality_and_questions_panels_show_the_gateways_report(
    stack: PipelineStack, browser: Browser, api: httpx.Client
) -> None:
    project_id = finished_project(api)
    report = api.get(f"/v1/projects/{project_id}/quality").json()
    questions = api.get(f"/v1/projects/{project_id}/questions", params={"limit": 200}).json()
    kpis = api.get(f"/v1/projects/{project_id}").json()["kpis"]
    counts = report["counts"]
    assert counts["requirements"] > 0
    assert counts["stories"] > 0
    assert questions["total"] > 0, "the sample PRD has a TBD question"
    print(f"quality of the sample: {counts}")

    page, errors = new_page(browser)
    page.goto(f"{stack.url}/projects/{project_id}?tab=quality#key={API_KEY}")
    expect(page.get_by_role("tab", name="Quality")).to_have_attribute("aria-selected", "true")
    panel = page.get_by_role("tabpanel", name="Quality")

    # The KPI strip counts coverage as the report does.
    expect(page.locator("[data-kpi=coverage] .value")).to_have_text(
        f"{round(100 * kpis['coverage'])}%"
    )
    expect(page.locator("[data-kpi=coverage] .note")).to_have_text(
        f"{kpis['requirements_covered']:,} of {kpis['requirements']:,} requirements"
    )
    expect(figure(page, "coverage").locator(".value")).to_have_text(
        f"{round(100 * report['coverage']['share'])}%"
    )
    for name, value in (
        ("untestable", counts["stories_untestable"]),
        ("duplicates", counts["duplicates"]),
        ("junk", counts["junk"]),
        ("oversized", counts["oversized_stories"] + counts["oversized_subtasks"]),
        ("questions", counts["open_questions"]),
    ):
        expect(figure(page, name).locator(".value")).to_have_text(f"{value:,}")
    for section, total, listed in (
        ("uncovered", counts["requirements_uncovered"], report["uncovered"]),
        ("untestable", counts["stories_untestable"], report["untestable"]),
        ("junk", counts["junk"], report["junk"]),
        ("duplicates", counts["duplicates"], report["duplicates"]),
    ):
        shown = panel.locator(f"[data-quality={section}]")
        expect(shown.locator("[data-testid=count]")).to_have_text(f"{total:,}")
        expect(shown.locator(".quality-list > li")).to_have_count(len(listed))
    if report["uncovered"]:
        first = report["uncovered"][0]
        expect(panel.locator("[data-quality=uncovered] .quality-list > li").first).to_contain_text(
            first["text"]
        )
    assert_accessible(page, "the quality panel")

    # To the questions by the keyboard: the tabs move with the arrow keys.
    page.get_by_role("tab", name="Quality").focus()
    page.keyboard.press("ArrowRight")
    questions_tab = page.get_by_role("tab", name=re.compile("^Questions"))
    expect(questions_tab).to_be_focused()
    expect(questions_tab).to_have_attribute("aria-selected", "true")
    listed = page.get_by_role("tabpanel", name="Questions").locator("[data-testid=question]")
    expect(listed).to_have_count(len(questions["questions"]))
    first = questions["questions"][0]
    expect(listed.first).to_contain_text(first["text"])
    if first["source_span"]:
        expect(listed.first).to_contain_text(f"characters {first['source_span']['start']:,}")
    expect(questions_tab.locator(".count")).to_have_text(f"{questions['total']:,}")
    card_heading = page.get_by_role("heading", name=first["card_title"], level=3)
    expect(card_heading.first).to_be_visible()
    assert_accessible(page, "the questions panel")
    assert not errors.errors, errors.errors
    page.context.close()

"""The web page in a browser: headless Debian Chromium (Playwright) against the whole stack
as processes, with the offline provider drafting at a simulated, watchable pace.

A person's session, in order: open the page with a key, create a project, upload several
files (picker and drag and drop), start a pipeline and watch it (elapsed counts every second,
counts grow, the banner names the items in flight) to its end, cancel one run, cancel and
retry another, then compare every backlog view, the run history, the run log with its filters
and the exports with what the API says. Failed items, a quiet run and a lost gateway, which
the offline provider cannot produce on demand, are played through the real page with the
API's answers made up in the browser. Screenshots of the project page mid-run and
after go to ``.cardflow/test-artifacts/web/``; axe-core checks each view.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, Route, expect

from tests.support.stack import API_KEY, PipelineStack
from tests.support.wait import until_sync
from tests.web.conftest import assert_accessible, new_page

pytestmark = [pytest.mark.web, pytest.mark.e2e, pytest.mark.kafka, pytest.mark.slow]

STACK_BACKENDS = ("sqlite",)
SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "field-service-prd.md"
RUN_TIMEOUT_MS = 240_000
FINISH_TIMEOUT_MS = 480_000  # a whole pipeline's rest, on a busy two-core machine
TICK_MS = 5_000
TERMINAL = ("succeeded", "partial", "failed", "cancelled")


@pytest.fixture(scope="module")
def stack_env() -> dict[str, str]:
    # Watchable: each draft waits 1.5 s, then streams (as `make demo` does).
    # Each draft waits a second, then streams: a pipeline long enough to watch (and to look at
    # mid-run), short enough for the suite.
    return {"CARDFLOW_LLM_OFFLINE_LATENCY_S": "1.0", "CARDFLOW_LLM_OFFLINE_TOKENS_PER_S": "200"}


@pytest.fixture
def api(stack: PipelineStack) -> Iterator[httpx.Client]:
    with stack.client(timeout=60.0) as client:
        yield client


# --- small helpers ----------------------------------------------------------------------------


class Phases:
    """Prints how long each part of a long test took (pytest shows it when the test fails)."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    def __call__(self, what: str) -> None:
        print(f"{time.monotonic() - self.start:6.1f}s {what}")


def seconds(text: str) -> int:
    """The page's durations: "5s", "1m 05s", "1h 02m"."""
    total = 0
    for value, unit in re.findall(r"(\d+)([hms])", text):
        total += int(value) * {"h": 3600, "m": 60, "s": 1}[unit]
    return total


def panel(page: Page, run_id: str) -> Locator:
    return page.locator(f'[data-testid=run-panel][data-run-id="{run_id}"]')


def run_of(api: httpx.Client, run_id: str) -> dict[str, Any]:
    response = api.get(f"/v1/runs/{run_id}")
    response.raise_for_status()
    return dict(response.json())


def start_from_dialog(page: Page, stage_label: str, configure: Any = None) -> str:
    """Opens the run dialog, picks the stage, lets ``configure`` set the rest, starts the run,
    and returns the id of the run whose panel appeared."""
    before = set(
        page.locator("[data-testid=run-panel]").evaluate_all("els => els.map(e => e.dataset.runId)")
    )
    page.get_by_role("button", name="Run…").first.click()
    dialog = page.get_by_role("dialog", name="Start a run")
    expect(dialog).to_be_visible()
    dialog.get_by_role("radio", name=re.compile(f"^{stage_label}")).check()
    if configure:
        configure(dialog)
    dialog.get_by_role("button", name="Start run").click()
    expect(dialog).to_be_hidden()

    def new_panel() -> str | None:
        ids = page.locator("[data-testid=run-panel]").evaluate_all(
            "els => els.map(e => e.dataset.runId)"
        )
        fresh = [i for i in ids if i not in before]
        return fresh[0] if fresh else None

    return str(until_sync(new_panel, timeout=30, what="the new run's panel"))


def expect_rows(table: Locator, entries: list[dict[str, Any]]) -> None:
    """The log table shows these entries (at most 500), or says that nothing matches."""
    if entries:
        expect(table).to_have_count(min(len(entries), 500))
    else:
        expect(table).to_have_count(1)
        expect(table).to_have_text("No entry matches these filters.")


def cancel_from_panel(page: Page, api: httpx.Client, run_id: str) -> None:
    """Cancel, from the run's panel: the panel ends cancelled, saying what was not done, with a
    Retry button; finished items stay."""
    theirs = panel(page, run_id)
    theirs.get_by_role("button", name="Cancel run").click()
    expect(theirs.locator(".status")).to_have_text("Cancelled", timeout=RUN_TIMEOUT_MS)
    run = run_of(api, run_id)
    assert run["status"] == "cancelled"
    assert run["counts"]["cancelled"] > 0
    expect(theirs.locator("[data-testid=now]")).to_contain_text(
        f"{run['counts']['succeeded']} done, {run['counts']['cancelled']} not done"
    )
    expect(theirs.get_by_role("button", name="Retry cancelled items")).to_be_visible()
    expect(theirs.get_by_role("button", name="Cancel run")).to_be_hidden()


def shot(page: Page, artifacts: Path, name: str, *, full: bool = True) -> Path:
    path = artifacts / f"{name}.png"
    page.screenshot(path=str(path), full_page=full)
    return path


# --- the key ----------------------------------------------------------------------------------


def test_the_page_asks_for_a_key_and_keeps_it_in_the_tab(
    stack: PipelineStack, browser: Browser, artifacts: Path
) -> None:
    page, errors = new_page(browser)
    page.goto(stack.url + "/")
    key = page.get_by_label("API key")
    expect(key).to_be_focused()
    assert_accessible(page, "the key prompt")
    shot(page, artifacts, "key-prompt", full=False)

    key.fill("not-a-key")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("alert")).to_contain_text("refused")
    key.fill(API_KEY)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Projects", level=1)).to_be_visible()
    assert page.evaluate("() => sessionStorage.getItem('cardflow.apiKey')") == API_KEY

    # A #key= link hands a key over and leaves no trace of it in the address bar.
    other, _ = new_page(browser)
    other.goto(f"{stack.url}/#key={API_KEY}")
    expect(other.get_by_role("heading", name="Projects", level=1)).to_be_visible()
    assert "key" not in other.url
    other.context.close()
    assert not errors.errors
    page.context.close()


# --- a whole session --------------------------------------------------------------------------


@pytest.mark.timeout(900)
def test_upload_run_watch_cancel_retry_and_every_view_matches_the_api(
    stack: PipelineStack,
    browser: Browser,
    api: httpx.Client,
    artifacts: Path,
    tmp_path: Path,
) -> None:
    page, errors = new_page(browser)
    page.goto(f"{stack.url}/#key={API_KEY}")
    phase = Phases()

    # A project, created from the page.
    page.get_by_label("Name").fill("Field service (web)")
    page.get_by_label("Description").fill("Scheduling, dispatch and mobile work orders")
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("heading", name="Field service (web)", level=1)).to_be_visible()
    project_id = page.url.rstrip("/").split("/")[-1]
    expect(page.get_by_text("Start with your requirements")).to_be_visible()
    expect(page.locator("[data-kpi=cards] .value")).to_have_text("0")
    assert_accessible(page, "an empty project")

    upload_files(page, tmp_path, project_id, api)
    phase("uploaded")
    pipeline = start_from_dialog(page, "Whole pipeline", set_subtask_options)
    watch_the_pipeline(page, api, pipeline)
    phase("watched")
    look_mid_run(page, browser, pipeline, artifacts, stack)
    phase("looked mid-run")
    mine = panel(page, pipeline)
    expect(mine.locator(".status")).to_have_text("Succeeded", timeout=FINISH_TIMEOUT_MS)
    final = run_of(api, pipeline)
    assert final["status"] == "succeeded", final
    expect(mine.locator("[data-testid=done]")).to_have_text(str(final["counts"]["succeeded"]))
    expect(mine.locator("[data-testid=now]")).to_contain_text(
        f"Finished: {final['counts']['succeeded']} items done"
    )
    expect(mine.locator("[data-testid=freshness]")).to_contain_text("Finished at")

    # One run (the analysis of every card) cancelled from its panel: it stays cancelled.
    cancelled = start_from_dialog(page, "Analysis")
    cancel_from_panel(page, api, cancelled)
    # Another (the stories of every epic) cancelled, then retried to the end from its panel:
    # only what did not finish runs again.
    retried = start_from_dialog(page, "Stories")
    cancel_from_panel(page, api, retried)
    theirs = panel(page, retried)
    theirs.get_by_role("button", name=re.compile("^Retry")).click()
    expect(theirs.locator(".status")).to_have_text(re.compile("Queued|Running"))
    expect(theirs.locator(".status")).to_have_text("Succeeded", timeout=RUN_TIMEOUT_MS)
    assert run_of(api, retried)["status"] == "succeeded"
    assert run_of(api, cancelled)["status"] == "cancelled"
    expect(panel(page, cancelled).locator(".status")).to_have_text("Cancelled")
    phase("pipeline succeeded")
    check_kpis(page, api, project_id)
    shot(page, artifacts, "project-after")
    check_epics(page, api, project_id, artifacts)
    check_stories(page, api, project_id, artifacts)
    check_subtasks(page, api, project_id, artifacts)
    phase("checked epics, stories, subtasks")
    check_cards(page, api, project_id)
    check_runs_and_log(page, api, project_id, pipeline, cancelled, retried, artifacts)
    check_exports(page, api, project_id)
    phase("checked runs, log, exports")

    # Back to the projects: the project's card with its figures.
    page.get_by_role("navigation", name="Breadcrumb").get_by_role("link", name="Projects").click()
    card = page.locator("[data-testid=projects] article", has_text="Field service (web)")
    kpis = api.get(f"/v1/projects/{project_id}").json()["kpis"]
    expect(card).to_contain_text(f"{kpis['subtasks']} subtasks")
    shot(page, artifacts, "projects", full=False)
    assert_accessible(page, "the projects")
    assert not errors.errors, errors.errors
    page.context.close()


def upload_files(page: Page, tmp_path: Path, project_id: str, api: httpx.Client) -> None:
    """Three files by the picker (one of them refused) and one by drag and drop; each gets its
    own row with its result."""
    notes = tmp_path / "visit-notes.txt"
    notes.write_text(
        "Technicians attach photos to a work order.\n\n"
        "Dispatchers see which jobs are late and why.\n"
    )
    scan = tmp_path / "whiteboard.png"
    scan.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    page.locator("input[type=file]").set_input_files([str(SAMPLE), str(notes), str(scan)])
    rows = page.locator(".uploads > li")
    expect(rows).to_have_count(3)
    for name in (SAMPLE.name, notes.name):
        expect(
            page.locator(f'.uploads > li[data-file="{name}"] [data-testid=upload-result]')
        ).to_have_text(re.compile(r"^\d+ cards? created$"), timeout=60_000)
    refused = page.locator(f'.uploads > li[data-file="{scan.name}"] [data-testid=upload-result]')
    expect(refused).to_have_text(re.compile(r"'\.png' files are not accepted"), timeout=60_000)
    expect(refused).to_have_attribute("role", "alert")

    # Drag and drop: a DataTransfer with a file, dropped on the zone.
    zone = page.locator("[data-testid=dropzone]")
    transfer = page.evaluate_handle(
        """() => {
            const data = new DataTransfer();
            const text = "title,body\\nInvoices by email,Send each invoice as a PDF.\\n";
            data.items.add(new File([text], "more.csv", {type: "text/csv"}));
            return data;
        }"""
    )
    zone.dispatch_event("dragenter", {"dataTransfer": transfer})
    expect(zone).to_have_class(re.compile("over"))
    zone.dispatch_event("drop", {"dataTransfer": transfer})
    expect(
        page.locator('.uploads > li[data-file="more.csv"] [data-testid=upload-result]')
    ).to_have_text("1 card created", timeout=60_000)

    cards = api.get(f"/v1/projects/{project_id}/cards").json()["cards"]
    prd_cards = int(
        page.locator(f'.uploads > li[data-file="{SAMPLE.name}"] [data-testid=upload-result]')
        .inner_text()
        .split()[0]
    )
    assert prd_cards >= 10
    expect(page.locator("[data-kpi=cards] .value")).to_have_text(str(len(cards)), timeout=30_000)
    expect(page.get_by_role("tab", name=re.compile("Cards"))).to_contain_text(str(len(cards)))


def set_subtask_options(dialog: Locator) -> None:
    dialog.get_by_label("At least, per story").fill("2")
    dialog.get_by_label("At most, per story").fill("3")
    dialog.get_by_label("Include docs tasks").uncheck()
    expect(dialog.get_by_text("Analysis → epics → stories → subtasks")).to_be_visible()
    assert_accessible(dialog.page, "the run dialog")


def watch_the_pipeline(page: Page, api: httpx.Client, run_id: str) -> None:
    """The panel is alive: elapsed counts every second, the banner names items in flight
    with "(N analysing)" or "(N generating)", and the done count grows."""
    mine = panel(page, run_id)
    expect(mine).to_be_visible()
    run = run_of(api, run_id)
    assert run["options"]["subtasks"] == {
        "min_per_story": 2,
        "max_per_story": 3,
        "include_tests": True,
        "include_docs": False,
    }
    expect(mine.locator("h3")).to_have_text("Pipeline run")
    expect(mine.get_by_role("list", name="Stages").locator("li")).to_have_count(4)

    # Elapsed grows by a second at a time, between polls too. (Each tick is allowed
    # TICK_MS: a starved browser on a busy machine may miss one.)
    elapsed = mine.locator("[data-testid=elapsed]")
    seen = [seconds(elapsed.inner_text())]
    for _ in range(4):
        current = elapsed.inner_text()
        expect(elapsed).not_to_have_text(current, timeout=TICK_MS)
        seen.append(seconds(elapsed.inner_text()))
    steps = [b - a for a, b in itertools.pairwise(seen)]
    assert all(1 <= step <= TICK_MS / 1000 for step in steps), (
        f"elapsed should count seconds: {seen}"
    )

    # The banner names items in flight, with how many of them are being worked on.
    chips = mine.locator(".now-item .title")
    expect(chips.first).to_be_visible(timeout=RUN_TIMEOUT_MS)
    expect(mine.locator("[data-testid=now] .now-title")).to_contain_text("Currently processing")
    expect(mine.locator("[data-testid=inflight]")).to_have_text(
        re.compile(r"\(\d+ (analysing|generating)"), timeout=RUN_TIMEOUT_MS
    )
    # The in-flight part of the bar (striped, moving) has a width.
    expect(mine.locator(".bar.big .running")).to_have_attribute(
        "style", re.compile(r"width: (?:[1-9]|0\.\d)"), timeout=RUN_TIMEOUT_MS
    )
    named = set(chips.all_inner_texts())
    done = mine.locator("[data-testid=done]")
    first_done = int(done.inner_text())
    expect(done).not_to_have_text(str(first_done), timeout=RUN_TIMEOUT_MS)
    assert int(done.inner_text()) > first_done
    expect(mine.locator("[data-testid=freshness]")).to_contain_text(
        re.compile("Live|No new progress since")
    )

    # Every item the banner named is an item of this run.
    titles = {i["title"] for i in api.get(f"/v1/runs/{run_id}/items").json()["items"]}
    assert named <= titles, named - titles


def look_mid_run(
    page: Page, browser: Browser, run_id: str, artifacts: Path, stack: PipelineStack
) -> None:
    """Mid-run, items in flight: the screenshot, the accessibility check, a narrow screen."""
    mine = panel(page, run_id)
    expect(mine.locator(".now-item").first).to_be_visible(timeout=RUN_TIMEOUT_MS)
    shot(page, artifacts, "project-mid-run")
    assert_accessible(page, "the project page mid-run")
    narrow, narrow_errors = new_page(browser, width=390, height=844)
    narrow.goto(f"{stack.url}{page.url.removeprefix(stack.url).split('?')[0]}#key={API_KEY}")
    expect(panel(narrow, run_id).locator(".now-item").first).to_be_visible(timeout=RUN_TIMEOUT_MS)
    shot(narrow, artifacts, "project-mid-run-narrow")
    assert_accessible(narrow, "the project page on a narrow screen")
    width = narrow.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a narrow screen ({width}px)"
    assert not narrow_errors.errors, narrow_errors.errors
    narrow.context.close()


# --- the views against the API ---------------------------------------------------------------


def check_kpis(page: Page, api: httpx.Client, project_id: str) -> None:
    kpis = api.get(f"/v1/projects/{project_id}").json()["kpis"]
    shown = {
        "cards": "cards",
        "analysed": "cards_analyzed",
        "epics": "epics",
        "stories": "stories",
        "subtasks": "subtasks",
    }
    for tile, key in shown.items():
        expect(page.locator(f"[data-kpi={tile}] .value")).to_have_text(
            f"{kpis[key]:,}", timeout=30_000
        )
    # Coverage is the gateway's count (its quality report's): the analyses' requirements that
    # a story which is not junk cites.
    cards = api.get(f"/v1/projects/{project_id}/cards").json()["cards"]
    wanted = {r["id"] for c in cards if c["analysis"] for r in c["analysis"]["requirements"]}
    assert kpis["requirements"] == len(wanted)
    expect(page.locator("[data-kpi=coverage] .value")).to_have_text(
        f"{round(100 * kpis['requirements_covered'] / len(wanted))}%"
    )
    expect(page.locator("[data-kpi=coverage] .note")).to_have_text(
        f"{kpis['requirements_covered']} of {len(wanted)} requirements"
    )


def open_tab(page: Page, name: str) -> Locator:
    tab = page.get_by_role("tab", name=re.compile(f"^{name}"))
    tab.click()
    expect(tab).to_have_attribute("aria-selected", "true")
    return page.get_by_role("tabpanel", name=re.compile(f"^{name}"))


def check_epics(page: Page, api: httpx.Client, project_id: str, artifacts: Path) -> None:
    epics = api.get(f"/v1/projects/{project_id}/epics").json()["epics"]
    view = open_tab(page, "Epics")
    items = view.locator("[data-testid=epics] > li")
    expect(items).to_have_count(len(epics))
    shown = items.evaluate_all(
        """els => els.map(e => ({id: e.dataset.epicId, title: e.querySelector('h3').textContent,
             stories: e.querySelector('[data-testid=story-count]').textContent}))"""
    )
    assert [s["id"] for s in shown] == [e["epic_id"] for e in epics]
    assert [s["title"] for s in shown] == [e["title"] for e in epics]
    assert [int(s["stories"].split()[0]) for s in shown] == [e["story_count"] for e in epics]
    # The source requirements an epic covers, with their text.
    first = items.first
    first.get_by_text(re.compile(r"^Covers \d+ source requirements?$")).click()
    wanted = epics[0]["requirement_ids"][0]
    text = next(r["text"] for r in epics[0]["requirements"] if r["id"] == wanted)
    expect(first.locator(".req").first).to_contain_text(text)


def check_stories(page: Page, api: httpx.Client, project_id: str, artifacts: Path) -> None:
    groups = api.get(f"/v1/projects/{project_id}/stories").json()["epics"]
    view = open_tab(page, "Stories")
    expect(view.locator("[data-testid=stories] > section")).to_have_count(len(groups))
    shown = view.locator("[data-testid=stories] > section").evaluate_all(
        """els => els.map(g => ({epic: g.dataset.epicId,
           stories: [...g.querySelectorAll('li[data-story-id]')].map(s => ({
             id: s.dataset.storyId, title: s.querySelector('h4').textContent,
             criteria: s.querySelectorAll('ol.criteria > li').length,
             traces: s.querySelectorAll('.trace .req').length}))}))"""
    )
    assert [g["epic"] for g in shown] == [g["epic"]["epic_id"] for g in groups]
    for on_page, truth in zip(shown, groups, strict=True):
        assert [s["id"] for s in on_page["stories"]] == [s["story_id"] for s in truth["stories"]]
        assert [s["title"] for s in on_page["stories"]] == [s["title"] for s in truth["stories"]]
        assert [s["criteria"] for s in on_page["stories"]] == [
            len(s["acceptance_criteria"]) for s in truth["stories"]
        ]
        assert [s["traces"] for s in on_page["stories"]] == [
            len(s["requirement_ids"]) for s in truth["stories"]
        ]
    story = groups[0]["stories"][0]
    item = view.locator(f'li[data-story-id="{story["story_id"]}"]')
    criterion = story["acceptance_criteria"][0]
    expect(item.locator("ol.criteria > li").first).to_contain_text(criterion["given"])
    expect(item.locator("ol.criteria > li").first).to_contain_text(criterion["then"])
    expect(item.locator(".story-line")).to_contain_text(story["i_want"])
    page.get_by_role("tablist").evaluate("el => el.scrollIntoView({block: 'start'})")
    shot(page, artifacts, "stories", full=False)
    assert_accessible(page, "the stories")


def check_subtasks(page: Page, api: httpx.Client, project_id: str, artifacts: Path) -> None:
    groups = api.get(f"/v1/projects/{project_id}/subtasks").json()["epics"]
    view = open_tab(page, "Subtasks")
    expect(view.locator("[data-testid=subtasks] > section")).to_have_count(len(groups))
    shown = view.locator("[data-testid=subtasks] .subgroup").evaluate_all(
        """els => els.map(g => ({story: g.dataset.storyId,
             epic: g.closest('section').dataset.epicId,
             subtasks: [...g.querySelectorAll('tr[data-subtask-id]')]
               .map(r => r.dataset.subtaskId)}))"""
    )
    truth = [
        {
            "story": child["story"]["story_id"],
            "epic": group["epic"]["epic_id"],
            "subtasks": [t["subtask_id"] for t in child["subtasks"]],
        }
        for group in groups
        for child in group["stories"]
    ]
    assert shown == truth
    options_ok = all(
        2 <= len(child["subtasks"]) <= 3 and all(t["kind"] != "docs" for t in child["subtasks"])
        for group in groups
        for child in group["stories"]
    )
    assert options_ok, "the run dialog's options reached the subtasks stage"

    # A row expands to its description, estimate, dependencies and source requirement.
    story = next(
        c for g in groups for c in g["stories"] if any(t["depends_on"] for t in c["subtasks"])
    )
    task = next(t for t in story["subtasks"] if t["depends_on"])
    titles = {t["subtask_id"]: t["title"] for t in story["subtasks"]}
    row = view.locator(f'tr[data-subtask-id="{task["subtask_id"]}"]')
    toggle = row.get_by_role("button")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    toggle.focus()
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    detail = view.locator(f"#{toggle.get_attribute('aria-controls')}")
    expect(detail).to_be_visible()
    expect(detail).to_contain_text(task["description"])
    hours = float(task["estimate_hours"])
    expect(detail).to_contain_text(f"{int(hours) if hours.is_integer() else f'{hours:.1f}'} h")
    for dependency in task["depends_on"]:
        expect(detail).to_contain_text(titles[dependency])
    expect(detail.locator(".req").first).to_be_visible()
    view.locator(f'.subgroup[data-story-id="{story["story"]["story_id"]}"]').evaluate(
        "el => el.scrollIntoView({block: 'start'})"
    )
    shot(page, artifacts, "subtasks", full=False)
    assert_accessible(page, "the subtasks with a row expanded")


def check_cards(page: Page, api: httpx.Client, project_id: str) -> None:
    cards = api.get(f"/v1/projects/{project_id}/cards").json()["cards"]
    view = open_tab(page, "Cards")
    shown = view.locator("[data-testid=cards] > li").evaluate_all(
        "els => els.map(e => e.dataset.cardId)"
    )
    assert shown == [c["id"] for c in cards]


def check_runs_and_log(
    page: Page,
    api: httpx.Client,
    project_id: str,
    pipeline: str,
    cancelled: str,
    retried: str,
    artifacts: Path,
) -> None:
    runs = api.get(f"/v1/projects/{project_id}/runs").json()["runs"]
    view = open_tab(page, "Runs")
    rows = view.locator("[data-testid=runs] tbody tr")
    expect(rows).to_have_count(len(runs))
    assert rows.evaluate_all("els => els.map(e => e.dataset.runId)") == [r["id"] for r in runs]
    status = {r["id"]: r["status"] for r in runs}
    assert status == {pipeline: "succeeded", cancelled: "cancelled", retried: "succeeded"}
    for run in runs:
        label = {"succeeded": "Succeeded", "cancelled": "Cancelled"}[run["status"]]
        expect(view.locator(f'tr[data-run-id="{run["id"]}"] .status')).to_have_text(label)

    # The log of the run that was cancelled and retried.
    view.locator(f'tr[data-run-id="{retried}"]').get_by_role("link").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Stories run")
    log = api.get(f"/v1/runs/{retried}/log").json()["log"]
    table = page.locator("[data-testid=log] tbody tr")
    expect(page.locator("[data-testid=log-count]")).to_have_text(f"{len(log):,} entries")
    expect(table).to_have_count(min(len(log), 500))

    # By level: each level shows exactly its entries (or says that none match).
    level = page.get_by_label("Level", exact=True)
    for value in ("error", "warning", "info"):
        level.select_option(value)
        expect_rows(table, [e for e in log if e["level"] == value])
        if any(e["level"] == value for e in log):
            assert set(table.evaluate_all("els => els.map(e => e.dataset.level)")) == {value}
    level.select_option("")

    # By item (one that was cancelled, if any): its entries, and only those; then by words.
    items = [e["item"] for e in log if e["item"]]
    item = next((e["item"] for e in log if e["item"] and "cancelled" in e["message"]), items[0])
    page.get_by_label("Item", exact=True).select_option(item)
    expect_rows(table, [e for e in log if e["item"] == item])
    assert set(table.evaluate_all("els => els.map(e => e.dataset.item)")) == {item}
    page.get_by_label("Item", exact=True).select_option("")
    page.get_by_label("Search", exact=True).fill("queued again")
    expect_rows(table, [e for e in log if "queued again" in e["message"]])
    shot(page, artifacts, "run-log", full=False)
    assert_accessible(page, "the run log")
    page.go_back()
    expect(page.get_by_role("heading", level=1)).to_have_text("Field service (web)")


def check_exports(page: Page, api: httpx.Client, project_id: str) -> None:
    for format_, label in (("json", "JSON"), ("csv", "CSV"), ("markdown", "Markdown")):
        with page.expect_download() as download:
            page.get_by_role("button", name=f"Export the backlog as {label}").click()
        saved = Path(download.value.path()).read_text(encoding="utf-8")
        truth = api.get(f"/v1/projects/{project_id}/export", params={"format": format_}).text
        if format_ == "json":
            assert json.loads(saved) == json.loads(truth)
        elif format_ == "csv":
            assert list(csv.reader(io.StringIO(saved))) == list(csv.reader(io.StringIO(truth)))
        else:
            assert saved == truth
        assert download.value.suggested_filename.startswith(f"backlog-{project_id}")


# --- what the offline provider cannot produce on demand ---------------------------------------


def ago(seconds: float) -> str:
    """An ISO time ``seconds`` ago, as the API writes times."""
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() - seconds))


def made_up_run(version: int, status: str, **changes: Any) -> dict[str, Any]:
    """A run object as the API gives it (DESIGN.md), for answers made up in the browser."""
    run: dict[str, Any] = {
        "id": "r-made-up",
        "project_id": "p-made-up",
        "stage": "stories",
        "status": status,
        "created_at": ago(60),
        "started_at": ago(59),
        "finished_at": None,
        "elapsed_seconds": 60.0,
        "eta_seconds": 30.0,
        "counts": {
            "total": 6,
            "pending": 1,
            "running": 2,
            "succeeded": 2,
            "failed": 1,
            "cancelled": 0,
        },
        "in_progress": [
            {
                "item_id": "e4",
                "stage": "stories",
                "title": "Route planning",
                "started_at": ago(12),
                "elapsed_seconds": 12.0,
                "tokens_so_far": 340,
                "attempt": 1,
            },
            {
                "item_id": "e5",
                "stage": "stories",
                "title": "Parts inventory",
                "started_at": ago(5),
                "elapsed_seconds": 5.0,
                "tokens_so_far": 0,
                "attempt": 2,
            },
        ],
        "stages": {},
        "stages_done": [],
        "usage": {"llm_calls": 5, "input_tokens": 5200, "output_tokens": 1900, "cost_usd": 0.0123},
        "errors": [
            {
                "item_id": "e3",
                "stage": "stories",
                "code": "llm_timeout",
                "message": "The model gave no answer within 120 s.",
            },
        ],
        "options": {"budget_usd": 0.5},
        "version": version,
        "updated_at": ago(1),
    }
    run.update(changes)
    return run


def test_the_panel_shows_errors_and_never_looks_frozen(
    stack: PipelineStack, browser: Browser, artifacts: Path
) -> None:
    """Failed items, a run that goes quiet, a gateway that stops answering: played through
    the real page (served by the gateway) with the API's answers made up in the browser."""
    page, errors = new_page(browser)
    state: dict[str, Any] = {"run": made_up_run(7, "running"), "lost": False}
    items = [
        {
            "item_id": f"e{n}",
            "stage": "stories",
            "title": title,
            "state": "running",
            "attempts": 1,
            "tokens_so_far": 0,
            "started_at": None,
            "finished_at": None,
            "error": None,
            "provenance": None,
        }
        for n, title in enumerate(
            [
                "Scheduling",
                "Dispatch",
                "Checkout with a saved card",
                "Route planning",
                "Parts inventory",
                "Invoicing",
            ],
            start=1,
        )
    ]

    def run_answer(route: Route) -> None:
        if state["lost"]:
            route.abort("connectionrefused")
            return
        run = state["run"]
        etag = f'"v{run["version"]}"'
        if route.request.headers.get("if-none-match") == etag:
            route.fulfill(status=304, headers={"ETag": etag})
        else:
            route.fulfill(json=run, headers={"ETag": etag, "Cache-Control": "no-store"})

    def retry_answer(route: Route) -> None:
        state["run"] = made_up_run(
            10,
            "running",
            errors=[],
            counts={
                "total": 6,
                "pending": 3,
                "running": 0,
                "succeeded": 3,
                "failed": 0,
                "cancelled": 0,
            },
            in_progress=[],
        )
        route.fulfill(status=202, json=state["run"])

    page.route(re.compile(r".*/v1/runs/r-made-up(\?.*)?$"), run_answer)
    page.route("**/v1/runs/r-made-up/retry", retry_answer)
    page.route("**/v1/runs/r-made-up/items", lambda route: route.fulfill(json={"items": items}))
    page.route("**/v1/runs/r-made-up/log", lambda route: route.fulfill(json={"log": []}))
    page.route(
        "**/v1/projects/p-made-up",
        lambda route: route.fulfill(
            json={
                "id": "p-made-up",
                "name": "Made-up project",
                "description": "",
                "kpis": {},
                "active_runs": [],
            }
        ),
    )
    page.goto(f"{stack.url}/projects/p-made-up/runs/r-made-up#key={API_KEY}")
    mine = panel(page, "r-made-up")

    # Errors with their codes, the item they hit (by title) and what happened.
    failures = mine.get_by_role("list", name="Errors").locator("li")
    expect(failures).to_have_count(1)
    expect(failures.locator(".badge.code")).to_have_text("llm_timeout")
    expect(failures).to_contain_text("Checkout with a saved card")
    expect(failures).to_contain_text("no answer within 120 s")
    expect(mine.get_by_text("Retry when the run has finished")).to_be_visible()
    expect(mine.locator("[data-testid=usage]")).to_contain_text("Budget $0.50")

    # Only 304s: the clocks still move every second.
    elapsed = mine.locator("[data-testid=elapsed]")
    for _ in range(2):
        current = elapsed.inner_text()
        expect(elapsed).not_to_have_text(current, timeout=TICK_MS)
    chip = mine.locator(".now-item", has_text="Route planning").locator(".facts")
    current = chip.inner_text()
    expect(chip).not_to_have_text(current, timeout=TICK_MS)

    # Quiet for a while: it says since when; the gateway gone: it says so, and since when.
    freshness = mine.locator("[data-testid=freshness]")
    expect(freshness).to_contain_text("No new progress since", timeout=25_000)
    shot(page, artifacts, "run-quiet-with-errors", full=False)
    state["lost"] = True
    expect(freshness).to_contain_text("Connection lost since", timeout=10_000)
    state["lost"] = False

    # It ends partly failed; Retry reruns the failed items, and the page says so politely.
    state["run"] = made_up_run(
        9,
        "partial",
        in_progress=[],
        eta_seconds=0.0,
        finished_at=ago(0),
        counts={
            "total": 6,
            "pending": 0,
            "running": 0,
            "succeeded": 3,
            "failed": 3,
            "cancelled": 0,
        },
        errors=[
            {"item_id": f"e{n}", "stage": "stories", "code": code, "message": ""}
            for n, code in ((3, "llm_timeout"), (5, "llm_invalid_output"), (6, "budget_exceeded"))
        ],
    )
    expect(mine.locator(".status")).to_have_text("Partly failed", timeout=15_000)
    expect(page.locator("#announcer")).to_have_text("Stories run partly failed: 3 of 6 items done.")
    expect(failures).to_have_count(3)
    expect(failures.locator(".badge.code")).to_have_text(
        ["llm_timeout", "llm_invalid_output", "budget_exceeded"]
    )
    assert_accessible(page, "a run with errors")
    mine.get_by_role("button", name="Retry failed items").click()
    expect(mine.locator(".status")).to_have_text("Running")
    expect(failures).to_have_count(0)
    assert not errors.errors, errors.errors
    page.context.close()

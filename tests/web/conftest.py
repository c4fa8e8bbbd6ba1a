"""Browser fixtures for the web page's tests: Debian's Chromium driven by Playwright (sync
API), screenshots under ``.cardflow/test-artifacts/web/`` (or ``$CARDFLOW_WEB_ARTIFACTS``),
and an axe-core accessibility check.

Chromium comes from Debian (``make chromium``, a prerequisite of ``make test``); Playwright's
own browser download is not used. A missing browser fails the tests with what to run: the
suite never skips a test for want of its tools.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Response,
    expect,
    sync_playwright,
)

CHECKOUT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
# Headless, and none of Chromium's own connections to the outside (the machine has none).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BLOCKING_IMPACTS = ("serious", "critical")
# Assertions wait for their condition up to this long (Playwright's default is 5 s): a page
# served by a stack of six processes on a busy two-core machine can take a few seconds.
expect.set_options(timeout=20_000)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots go (kept after the run, for people to look at)."""
    path = Path(
        os.environ.get("CARDFLOW_WEB_ARTIFACTS") or CHECKOUT / ".cardflow/test-artifacts/web"
    )
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: `make chromium` installs Debian's chromium "
            "(or: apt-get install -y chromium)",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


class PageErrors:
    """What must not happen on a page: an uncaught script error, an error the page logged, a
    server error, a missing file of the page. (A 4xx answer of the API is the page's business:
    a refused key, a refused upload; the browser logs those too, and they are not counted.)"""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))
        page.on("console", self._console)
        page.on("response", self._response)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(f"console: {message.text}")

    def _response(self, response: Response) -> None:
        if response.status >= 500 or (response.status == 404 and "/v1/" not in response.url):
            self.errors.append(f"HTTP {response.status}: {response.url}")


def new_page(browser: Browser, width: int = 1280, height: int = 900) -> tuple[Page, PageErrors]:
    context = browser.new_context(viewport={"width": width, "height": height}, locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(30_000)
    return page, PageErrors(page)


_AXE = Axe()


def accessibility_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    result = _AXE.run(page).response
    return [v for v in result["violations"] if v.get("impact") in BLOCKING_IMPACTS]


def describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        targets = [str(node.get("target")) for node in violation["nodes"][:5]]
        lines.append(f"{violation['id']} ({violation['impact']}): {violation['help']} at {targets}")
    return "\n".join(lines)


def assert_accessible(page: Page, where: str) -> None:
    found = accessibility_violations(page)
    assert not found, f"axe-core, {where}:\n{describe(found)}"

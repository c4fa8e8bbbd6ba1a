"""The gateway keeps answering while a hostile upload is read: a real uvicorn server (the
gateway's own app and migrations, SQLite, no broker) on a free port, a Markdown file built to
make a quadratic parser stall (a heading of 200,000 spaces, then 200,000 ``[``), and /healthz
polled all the while it is in flight, each poll with a short deadline of its own."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from services.gateway.app import create_app
from services.gateway.problems import PROBLEMS
from services.runtime.settings import Settings
from tests.support.infra import sqlite_url
from tests.support.served import served

pytestmark = pytest.mark.integration

KEY = "upload-health-test-key"
HEALTH_TIMEOUT_S = 2.0
"""Each /healthz must answer within this: generous for a probe, far below a stalled loop."""
UPLOAD_DEADLINE_S = 60.0
HOSTILE = ("#" + " " * 200_000 + "x\n\n" + "[" * 200_000 + "\n").encode()
BOUNDARY = "cardflow-test-boundary"


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        service_name="gateway",
        database_url=sqlite_url(tmp_path / "gateway.db"),
        fleet_database_url=sqlite_url(tmp_path / "fleet.db"),
        state_dir=tmp_path,
        bootstrap_api_key=KEY,  # type: ignore[arg-type]
    )
    with served(create_app(settings)) as url:
        headers = {"Authorization": f"Bearer {KEY}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as http:
            yield http


def _multipart(file_name: str, data: bytes) -> tuple[bytes, bytes]:
    """The multipart/form-data body of one ``file`` field: (everything up to and with the
    file's bytes, the closing boundary)."""
    head = (
        f"--{BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{file_name}"\r\n'
        "Content-Type: text/markdown\r\n\r\n"
    ).encode()
    return head + data, f"\r\n--{BOUNDARY}--\r\n".encode()


async def test_healthz_answers_while_a_hostile_upload_is_read(
    gateway: httpx.AsyncClient,
) -> None:
    assert len(HOSTILE) < 5 * 1024 * 1024  # within the default upload limit
    created = await gateway.post("/v1/projects", json={"name": "Hostile upload"})
    assert created.status_code == 201, created.text
    project_id = created.json()["id"]

    # The upload's body is streamed: its first half goes out, then it waits for `release`,
    # so /healthz is asked while the upload is certainly in flight; then the rest goes and
    # /healthz is asked again and again until the upload answers.
    first_half_sent = asyncio.Event()
    release = asyncio.Event()
    content, closing = _multipart("hostile.md", HOSTILE)
    half = len(content) // 2

    async def body() -> AsyncIterator[bytes]:
        yield content[:half]
        first_half_sent.set()  # runs once httpx asks for the next chunk: the first is out
        await release.wait()
        yield content[half:]
        yield closing

    upload = asyncio.create_task(
        gateway.post(
            f"/v1/projects/{project_id}/uploads",
            content=body(),
            headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
            timeout=UPLOAD_DEADLINE_S,
        )
    )
    answers: list[int] = []

    async def healthz() -> None:
        try:
            response = await gateway.get("/healthz", timeout=HEALTH_TIMEOUT_S)
        except httpx.TimeoutException:
            pytest.fail(
                f"/healthz did not answer within {HEALTH_TIMEOUT_S} s while the upload was "
                f"in flight (after {len(answers)} answers)"
            )
        assert response.status_code == 200, response.text
        assert response.json() == {"status": "ok"}
        answers.append(response.status_code)

    try:
        await asyncio.wait_for(first_half_sent.wait(), timeout=30)
        for _ in range(5):
            await healthz()
        release.set()
        deadline = time.monotonic() + UPLOAD_DEADLINE_S
        while not upload.done():
            assert time.monotonic() < deadline, "the upload did not answer"
            await healthz()
        response = await upload
    finally:
        release.set()
        if not upload.done():
            upload.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await upload
    await healthz()  # and after it

    assert len(answers) >= 6
    # The upload is answered: its cards (202) or a refusal as problem+json, never a 500.
    assert response.status_code < 500, response.text
    if response.status_code != 202:
        assert 400 <= response.status_code < 500, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        problem = response.json()
        assert problem["code"] in PROBLEMS
        assert problem["status"] == response.status_code
        # One paragraph of 200,000 characters is over the card limit.
        assert problem["code"] == "card_too_long"
    else:
        assert response.json()["cards"]

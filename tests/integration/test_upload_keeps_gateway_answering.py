"""The gateway keeps answering while a hostile upload is read: a real uvicorn server (the
gateway's own app and migrations, SQLite, no broker) on a free port, a Markdown file built to
make a quadratic parser stall (a heading of 200,000 spaces, then 200,000 ``[``), and /healthz
polled all the while it is in flight, each poll with a short deadline of its own."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from services.gateway.app import MIGRATIONS, create_app
from services.gateway.problems import PROBLEMS
from services.runtime.migrate import migrate
from services.runtime.settings import Settings
from tests.support.infra import sqlite_url
from tests.support.wait import until_sync

pytestmark = pytest.mark.integration

KEY = "upload-health-test-key"
HEALTH_TIMEOUT_S = 2.0
"""Each /healthz must answer within this: generous for a probe, far below a stalled loop."""
UPLOAD_DEADLINE_S = 60.0
HOSTILE = ("#" + " " * 200_000 + "x\n\n" + "[" * 200_000 + "\n").encode()
BOUNDARY = "cardflow-test-boundary"


@contextlib.contextmanager
def served(app: FastAPI) -> Iterator[str]:
    """``app`` served by uvicorn in a thread of its own (its own event loop, as in
    production: the test's client loop never runs the server's work); the base URL."""
    service = app.state.service
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    failure: list[BaseException] = []

    async def main() -> None:
        # The database is the server loop's alone: migrated, used and closed there.
        try:
            await migrate(service.engine, MIGRATIONS)
            await server.serve(sockets=[sock])
        except BaseException as error:
            failure.append(error)
            raise
        finally:
            await service.engine.dispose()
            await service.fleet.close()

    thread = threading.Thread(target=asyncio.run, args=(main(),), name="gateway", daemon=True)
    thread.start()
    until_sync(
        lambda: server.started or not thread.is_alive(),
        timeout=30,
        what="the gateway to listen",
        interval=0.02,
    )
    assert server.started, f"the gateway did not start: {failure!r}"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
        assert not thread.is_alive(), "the gateway did not stop"


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

"""Every request's body is bounded before the API key is checked: a real uvicorn server (the
gateway's app, SQLite, no broker) and raw sockets, so the test sees how much of a body the
server took before it answered, which an HTTP client library hides."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from services.gateway.app import create_app
from services.runtime.settings import FORM_FRAMING_BYTES, Settings
from tests.support.infra import sqlite_url
from tests.support.served import served

pytestmark = pytest.mark.integration

KEY = "body-limit-test-key"
LIMIT = 256 * 1024
UPLOAD_MAX = 64 * 1024
CHUNK = 64 * 1024
HOSTILE_BYTES = 64 * 1024 * 1024
"""What a hostile client offers: read whole, as before the limit, it would all be taken."""


@pytest.fixture
def gateway_url(tmp_path: Path) -> Iterator[str]:
    settings = Settings(
        service_name="gateway",
        database_url=sqlite_url(tmp_path / "gateway.db"),
        fleet_database_url=sqlite_url(tmp_path / "fleet.db"),
        state_dir=tmp_path,
        bootstrap_api_key=KEY,  # type: ignore[arg-type]
        request_max_body_bytes=LIMIT,
        upload_max_file_bytes=UPLOAD_MAX,
    )
    assert settings.request_body_limit() == LIMIT
    with served(create_app(settings)) as url:
        yield url


@pytest.fixture
async def http(gateway_url: str) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=gateway_url, headers=headers, timeout=30) as client:
        yield client


async def _connect(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    where = urlsplit(url)
    assert where.hostname is not None
    assert where.port is not None
    return await asyncio.open_connection(where.hostname, where.port)


async def _response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=30)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = dict(
        (name.strip().lower(), value.strip())
        for name, value in (line.split(":", 1) for line in lines[1:] if ":" in line)
    )
    body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 30)
    return status, headers, body


def _is_too_large(status: int, headers: dict[str, str], body: bytes) -> None:
    assert status == 413, body
    assert headers["content-type"].startswith("application/problem+json")
    problem = json.loads(body)
    assert problem["code"] == "request_too_large"
    assert problem["status"] == 413
    assert problem["limit"] == LIMIT


async def test_a_declared_body_over_the_limit_is_refused_before_it_is_sent(
    gateway_url: str,
) -> None:
    reader, writer = await _connect(gateway_url)
    try:
        # No key, and 300 MB announced: the answer comes with not one byte of the body sent.
        writer.write(
            b"POST /v1/projects/p/cards HTTP/1.1\r\nHost: gateway\r\n"
            b"Content-Type: application/json\r\nContent-Length: 314572800\r\n\r\n"
        )
        await writer.drain()
        _is_too_large(*await _response(reader))
    finally:
        writer.close()


async def test_a_streamed_body_stops_being_read_at_the_limit_without_a_key(
    gateway_url: str,
) -> None:
    reader, writer = await _connect(gateway_url)
    sent = 0
    answer: asyncio.Task[tuple[int, dict[str, str], bytes]] = asyncio.create_task(_response(reader))
    try:
        # Chunked, so no length is declared: the server must count what it reads.
        writer.write(
            b"POST /v1/projects/p/cards HTTP/1.1\r\nHost: gateway\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        chunk = f"{CHUNK:x}\r\n".encode() + b"[" * CHUNK + b"\r\n"
        while not answer.done() and sent < HOSTILE_BYTES:
            try:
                writer.write(chunk)
                await asyncio.wait_for(writer.drain(), timeout=5)
            except (ConnectionError, TimeoutError):
                break  # the server stopped reading: its answer is on the way
            sent += CHUNK
        status, headers, body = await asyncio.wait_for(answer, timeout=30)
    finally:
        answer.cancel()
        writer.close()
    _is_too_large(status, headers, body)
    # Far less than offered: what the socket buffers held on top of the limit, at most.
    assert sent < HOSTILE_BYTES / 4, f"{sent} bytes went out before the answer"


async def test_a_body_over_the_limit_with_a_key_is_413_not_a_parse_error(
    http: httpx.AsyncClient,
) -> None:
    created = await http.post("/v1/projects", json={"name": "Bounded"})
    assert created.status_code == 201, created.text
    project_id = created.json()["id"]
    big = {"cards": [{"title": "A card", "body": "x" * (LIMIT + 1)}]}

    async def streamed() -> AsyncIterator[bytes]:
        yield json.dumps(big).encode()  # no Content-Length: counted while read

    response = await http.post(
        f"/v1/projects/{project_id}/cards",
        content=streamed(),
        headers={"Content-Type": "application/json"},
    )
    _is_too_large(response.status_code, dict(response.headers), response.content)

    # What fits is taken as before.
    fits = await http.post(
        f"/v1/projects/{project_id}/cards",
        json={"cards": [{"title": "A card", "body": "The system shall export a backlog."}]},
    )
    assert fits.status_code in (200, 201, 202), fits.text


def test_the_largest_allowed_upload_always_fits_the_body_limit() -> None:
    settings = Settings(request_max_body_bytes=1024, upload_max_file_bytes=10 * 1024 * 1024)
    assert settings.request_body_limit() == 10 * 1024 * 1024 + FORM_FRAMING_BYTES
    roomy = Settings(request_max_body_bytes=32 * 1024 * 1024)
    assert roomy.request_body_limit() == 32 * 1024 * 1024

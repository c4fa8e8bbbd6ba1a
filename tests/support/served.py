"""The gateway's own app served by a real uvicorn server in a thread of its own, on a free
port, with its migrations run first (no broker): for tests of the HTTP edge."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence

import uvicorn
from fastapi import FastAPI

from services.gateway.app import MIGRATIONS
from services.runtime.migrate import migrate
from tests.support.wait import until_sync


@contextlib.contextmanager
def served(
    app: FastAPI, background: Sequence[Callable[[asyncio.Event], Awaitable[None]]] = ()
) -> Iterator[str]:
    """``app`` served by uvicorn in a thread of its own (its own event loop, as in
    production: the test's client loop never runs the server's work); the base URL.
    ``background``: loops of the app's lifespan to run beside it (given a stop event)."""
    service = app.state.service
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    failure: list[BaseException] = []

    async def main() -> None:
        # The database is the server loop's alone: migrated, used and closed there.
        stop = asyncio.Event()
        loops: list[asyncio.Task[None]] = []
        try:
            await migrate(service.engine, MIGRATIONS)
            loops += [asyncio.create_task(loop(stop)) for loop in background]  # type: ignore[arg-type]
            await server.serve(sockets=[sock])
        except BaseException as error:
            failure.append(error)
            raise
        finally:
            stop.set()
            await asyncio.gather(*loops, return_exceptions=True)
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

"""A scripted OpenAI-compatible server: a real HTTP server on 127.0.0.1 for tests.

``ScriptedLLM`` runs uvicorn in a background thread, so it serves sync tests, async tests
(whatever their event loop) and services running as separate OS processes alike: they only
need ``llm.base_url`` (e.g. ``CARDFLOW_LLM_BASE_URL``).

By default every call answers a valid JSON instance of the request's
``response_format.json_schema`` (deterministic given the request), streamed in chunks over
``latency_s`` seconds, with a usage chunk when ``stream_options.include_usage`` is set. A
script changes that per call: a list of replies consumed in order (then the default), or a
callable ``(RecordedCall) -> Reply | None``::

    with ScriptedLLM(script=[rate_limited("2"), normal()], latency_s=0.5) as llm:
        ...  # point the client at llm.base_url
        assert len(llm.calls) == 2

Replies: ``normal``, ``slow``, ``hang_before_first_byte``, ``stall_midway``, ``http_error``
(``rate_limited``, ``unavailable``, ``context_overflow``), ``truncated_json``,
``invalid_json``, ``schema_mismatch``, ``refusal``, ``content`` (any answer text) and
``drop_connection`` (the socket is cut, before the answer or midway through it).

To fault some items and not others, ``Targeted`` picks replies by what a call is about (a
marker in its messages, e.g. text of one card, or any predicate), and ``calls_matching``
counts what the server saw per item::

    script = Targeted(default).on("[card-3]", rate_limited("2")).always("[card-7]", refusal())
    llm.reset(script)
    ...
    assert len(llm.calls_matching("[card-3]")) == 2
"""

from __future__ import annotations

import asyncio
import collections
import json
import math
import socket
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import uvicorn

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]

FOREVER_S = 3600.0


# --- replies -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """How the server answers one call. Build with the functions below."""

    mode: str = "normal"
    latency_s: float | None = None
    """Total time of the answer, spread across its chunks; None: the server's default."""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    content: str | None = None
    finish_reason: str | None = None
    refusal: str = "I'm sorry, but I can't help with that."
    stall_after: float = 0.5
    """stall_midway: the fraction of the answer's chunks sent before it goes silent."""
    chunks: int | None = None
    """How many pieces the answer streams in; None: the server's default."""
    drop_after: float | None = None
    """drop_connection: None cuts the socket before any byte; a fraction of the answer's
    chunks streams first (headers included) otherwise."""


def normal(latency_s: float | None = None) -> Reply:
    return Reply("normal", latency_s=latency_s)


def slow(latency_s: float, chunks: int | None = None) -> Reply:
    """A valid answer streamed over ``latency_s``; more ``chunks`` keep it from looking idle."""
    return Reply("normal", latency_s=latency_s, chunks=chunks)


def hang_before_first_byte() -> Reply:
    """Accepts the request and never sends a byte (not even the status line)."""
    return Reply("hang")


def stall_midway(after: float = 0.5, latency_s: float | None = None) -> Reply:
    """Streams part of the answer, then goes silent without closing."""
    return Reply("stall", stall_after=after, latency_s=latency_s)


def http_error(
    status: int,
    *,
    headers: dict[str, str] | None = None,
    code: str | None = None,
    message: str | None = None,
    body: Any = None,
) -> Reply:
    """An error answer; the body defaults to OpenAI's ``{"error": {...}}`` shape."""
    if body is None:
        body = {
            "error": {
                "message": message or f"scripted error {status}",
                "type": "invalid_request_error" if status < 500 else "server_error",
                "param": None,
                "code": code,
            }
        }
    return Reply("http_error", status=status, headers=dict(headers or {}), body=body)


def rate_limited(retry_after: str | None = "1") -> Reply:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return http_error(429, headers=headers, code="rate_limit_exceeded", message="Rate limit")


def unavailable(status: int = 503) -> Reply:
    return http_error(status, message="The server is overloaded")


def context_overflow() -> Reply:
    return http_error(
        400,
        code="context_length_exceeded",
        message="This model's maximum context length is 128000 tokens. However, your "
        "messages resulted in 200000 tokens.",
    )


def truncated_json(finish_reason: str = "length") -> Reply:
    """A valid answer cut off at about 60% (as when max_tokens runs out)."""
    return Reply("truncated", finish_reason=finish_reason)


def invalid_json() -> Reply:
    return Reply("invalid_json")


def schema_mismatch() -> Reply:
    """Valid JSON that fails the schema (a required property is missing)."""
    return Reply("schema_mismatch")


def refusal(text: str = "I'm sorry, but I can't help with that.") -> Reply:
    return Reply("refusal", refusal=text)


def content(text: str, finish_reason: str = "stop", latency_s: float | None = None) -> Reply:
    """Any answer text, verbatim."""
    return Reply("content", content=text, finish_reason=finish_reason, latency_s=latency_s)


def stream_error(event: Any, after: float = 0.5) -> Reply:
    """A streamed 200 that, once ``after`` of the answer's chunks are sent, sends ``event`` as
    one more ``data:`` line and then ``[DONE]``: how vLLM and LiteLLM report a failure that
    happens after the stream started (``{"error": {...}}``)."""
    return Reply("stream_error", body=event, drop_after=after)


def drop_connection(after: float | None = None) -> Reply:
    """The TCP connection is cut (reset) with no HTTP answer at all, as a crashed proxy or a
    server going away does; with ``after``, once that fraction of a streamed answer was sent
    (a non-streamed answer is cut right after its status line)."""
    return Reply("drop", drop_after=after)


# --- what was asked ------------------------------------------------------------------------


@dataclass
class RecordedCall:
    index: int
    model: str
    messages: list[dict[str, Any]]
    stream: bool
    response_format: dict[str, Any] | None
    body: dict[str, Any]
    headers: dict[str, str]
    time: float
    """Wall clock (time.time()) when the request arrived."""
    monotonic: float
    reply: Reply = field(default_factory=Reply)
    ended: float | None = None
    """time.monotonic() when the server was done with the call (answered, cut it, or the
    client went away); None while it is in flight."""

    @property
    def schema(self) -> dict[str, Any] | None:
        rf = self.response_format or {}
        schema = (rf.get("json_schema") or {}).get("schema")
        return schema if isinstance(schema, dict) else None

    @property
    def schema_name(self) -> str | None:
        """``response_format.json_schema.name``: which output (so which stage) was asked for."""
        rf = self.response_format or {}
        name = (rf.get("json_schema") or {}).get("name")
        return name if isinstance(name, str) else None

    @property
    def text(self) -> str:
        """Every message's content, joined: what a marker is looked for in."""
        return "\n".join(str(m.get("content") or "") for m in self.messages)

    @property
    def duration_s(self) -> float | None:
        return None if self.ended is None else self.ended - self.monotonic


Script = Sequence[Reply] | Callable[[RecordedCall], Reply | None] | None
Match = str | Callable[[RecordedCall], bool]


# --- replies chosen per item ---------------------------------------------------------------


@dataclass
class _Rule:
    match: Match
    replies: collections.deque[Reply]
    then: Reply | None

    def matches(self, call: RecordedCall) -> bool:
        if isinstance(self.match, str):
            return self.match in call.text
        return self.match(call)


class Targeted:
    """A script that faults chosen items only.

    ``on(match, *replies, then=None)``: the calls that ``match`` (a marker found in their
    messages, or a predicate) get ``replies`` in order, then ``then`` for every later one
    (None: the default). The first rule that matches decides. Calls no rule matches, and
    matched calls past their replies, get ``default(call)`` (None: a normal answer). An
    empty marker matches every call, so ``on("", *[unavailable()] * 3)`` faults "the first
    3 calls". Rules may be added and cleared while the server runs.
    """

    def __init__(self, default: Callable[[RecordedCall], Reply | None] | None = None) -> None:
        self.default = default
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []

    def on(self, match: Match, *replies: Reply, then: Reply | None = None) -> Targeted:
        with self._lock:
            self._rules.append(_Rule(match, collections.deque(replies), then))
        return self

    def always(self, match: Match, reply: Reply) -> Targeted:
        return self.on(match, then=reply)

    def clear(self) -> None:
        """Drops every rule: from now on, every call gets the default (a healthy server)."""
        with self._lock:
            self._rules.clear()

    def __call__(self, call: RecordedCall) -> Reply | None:
        with self._lock:
            rule = next((r for r in self._rules if r.matches(call)), None)
            if rule is not None and rule.replies:
                return rule.replies.popleft()
            if rule is not None and rule.then is not None:
                return rule.then
        return self.default(call) if self.default is not None else None


# --- the server ----------------------------------------------------------------------------


class ScriptedLLM:
    def __init__(self, script: Script = None, *, latency_s: float = 0.0, chunks: int = 8) -> None:
        self.latency_s = latency_s
        self.chunks = max(1, chunks)
        self._lock = threading.Lock()
        self._calls: list[RecordedCall] = []
        self._queue: collections.deque[Reply] = collections.deque()
        self._script_fn: Callable[[RecordedCall], Reply | None] | None = None
        self.script = script
        self.in_flight = 0
        self.max_in_flight = 0
        self.context_tokens: int | None = None
        """When set, ``GET /props`` says it as llama.cpp's server does (one slot's n_ctx),
        and a prompt longer than it is refused as llama.cpp refuses it (400
        ``exceed_context_size_error``, the body recorded live)."""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing: asyncio.Event | None = None
        self._port = 0
        self._hold_from: int | None = None
        self._released = threading.Event()
        self.held = 0
        """Calls waiting at the gate of ``hold_from`` now."""

    # configuration

    def hold_from(self, index: int) -> None:
        """Calls from the ``index``-th on (0-based, counted since the last reset) wait before
        answering until ``release``: work held in flight for as long as a test needs."""
        self._released.clear()
        self._hold_from = index

    def release(self) -> None:
        self._hold_from = None
        self._released.set()

    @property
    def script(self) -> Script:
        return self._script_fn or list(self._queue)

    @script.setter
    def script(self, script: Script) -> None:
        with self._lock:
            self._queue = collections.deque()
            self._script_fn = None
            if callable(script):
                self._script_fn = script
            elif script is not None:
                self._queue.extend(script)

    def reset(self, script: Script = None, *, latency_s: float | None = None) -> None:
        """Forgets calls and the in-flight peak; sets a new script (default: normal answers)."""
        self.script = script
        with self._lock:
            self._calls.clear()
            self.max_in_flight = self.in_flight
        self.context_tokens = None
        self.release()
        if latency_s is not None:
            self.latency_s = latency_s

    @property
    def calls(self) -> list[RecordedCall]:
        with self._lock:
            return list(self._calls)

    @property
    def base_url(self) -> str:
        if not self._port:
            raise RuntimeError("ScriptedLLM is not started")
        return f"http://127.0.0.1:{self._port}/v1"

    def calls_matching(self, match: Match) -> list[RecordedCall]:
        """The calls whose messages contain the marker (or that the predicate accepts)."""
        rule = _Rule(match, collections.deque(), None)
        return [c for c in self.calls if rule.matches(c)]

    def wait_for_calls(self, count: int, timeout: float = 10.0) -> list[RecordedCall]:
        deadline = time.monotonic() + timeout
        while len(self._calls) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self._calls)} LLM calls after {timeout}s, not {count}")
            time.sleep(0.01)
        return self.calls

    # life

    def start(self) -> ScriptedLLM:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            interface="asgi3",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._run, args=(sock,), name="scripted-llm", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("ScriptedLLM did not start")
            time.sleep(0.01)
        return self

    def _run(self, sock: socket.socket) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._closing = asyncio.Event()
            assert self._server is not None
            await self._server.serve(sockets=[sock])

        asyncio.run(main())
        sock.close()

    def stop(self) -> None:
        if self._server is None:
            return
        if self._loop is not None and self._closing is not None:
            self._loop.call_soon_threadsafe(self._closing.set)
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
        self._server = None

    def __enter__(self) -> ScriptedLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # the ASGI app

    async def _app(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        raw = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["path"].rstrip("/")
        if scope["method"] == "GET" and path.endswith("/props") and self.context_tokens:
            settings = {"n_ctx": self.context_tokens, "temperature": 0.8}
            await _send_json(send, 200, {"default_generation_settings": settings})
            return
        if scope["method"] == "GET" and path.endswith("/models"):
            await _send_json(send, 200, {"object": "list", "data": [{"id": "scripted"}]})
            return
        if scope["method"] != "POST" or not path.endswith("/chat/completions"):
            await _send_json(send, 404, {"error": {"message": "not found", "code": None}})
            return
        try:
            request = json.loads(raw)
        except ValueError:
            await _send_json(send, 400, {"error": {"message": "body is not JSON", "code": None}})
            return
        call = self._record(request, scope)
        prompt_tokens = _tokens("".join(str(m.get("content") or "") for m in call.messages))
        if self.context_tokens and prompt_tokens > self.context_tokens:
            await _send_json(send, 400, _exceeds_context(prompt_tokens, self.context_tokens))
            return
        disconnected = asyncio.Event()
        watcher = asyncio.create_task(_watch_disconnect(receive, disconnected))
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self._hold_from is not None and call.index >= self._hold_from:
                self.held += 1
                try:
                    while not self._released.is_set():
                        if await self.pause(0.02, disconnected):
                            return
                finally:
                    self.held -= 1
            await _Answer(self, call, send, disconnected).run()
        except OSError:
            pass  # the client went away
        finally:
            call.ended = time.monotonic()
            with self._lock:
                self.in_flight -= 1
            watcher.cancel()

    def _record(self, request: dict[str, Any], scope: dict[str, Any]) -> RecordedCall:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        with self._lock:
            call = RecordedCall(
                index=len(self._calls),
                model=str(request.get("model", "")),
                messages=list(request.get("messages") or []),
                stream=bool(request.get("stream")),
                response_format=request.get("response_format"),
                body=request,
                headers=headers,
                time=time.time(),
                monotonic=time.monotonic(),
            )
            self._calls.append(call)
            queued = self._queue.popleft() if self._queue else None
            fn = self._script_fn
        reply = queued or (fn(call) if fn is not None else None) or Reply()
        call.reply = reply
        return call

    async def pause(self, seconds: float, disconnected: asyncio.Event) -> bool:
        """Sleeps; True (at once) when the client went away or the server is closing."""
        end = time.monotonic() + seconds
        while True:
            if disconnected.is_set() or (self._closing is not None and self._closing.is_set()):
                return True
            left = end - time.monotonic()
            if left <= 0:
                return False
            await asyncio.sleep(min(0.02, left))


def _exceeds_context(prompt_tokens: int, context: int) -> dict[str, Any]:
    """llama.cpp's answer to a prompt longer than a slot's context (recorded live, see
    ``tests/integration/data/provider_errors.json``)."""
    return {
        "error": {
            "code": 400,
            "message": f"request ({prompt_tokens} tokens) exceeds the available context size "
            f"({context} tokens), try increasing it",
            "type": "exceed_context_size_error",
            "n_prompt_tokens": prompt_tokens,
            "n_ctx": context,
        }
    }


async def _watch_disconnect(receive: Receive, disconnected: asyncio.Event) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            disconnected.set()
            return


async def _send_json(
    send: Send, status: int, body: Any, headers: dict[str, str] | None = None
) -> None:
    data = json.dumps(body).encode() if not isinstance(body, bytes | str) else body
    if isinstance(data, str):
        data = data.encode()
    raw_headers = [(b"content-type", b"application/json")]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": data, "more_body": False})


class _Answer:
    """One call's answer, as the reply asks."""

    def __init__(
        self, llm: ScriptedLLM, call: RecordedCall, send: Send, disconnected: asyncio.Event
    ) -> None:
        self.llm = llm
        self.call = call
        self.reply = call.reply
        self.send = send
        self.disconnected = disconnected
        latency = self.reply.latency_s
        self.latency_s = llm.latency_s if latency is None else latency
        self.id = f"chatcmpl-scripted-{call.index}"
        self.created = int(call.time)

    async def run(self) -> None:
        reply = self.reply
        if reply.mode == "http_error":
            await _send_json(self.send, reply.status, reply.body, reply.headers)
            return
        if reply.mode == "hang":
            await self.llm.pause(FOREVER_S, self.disconnected)
            return
        if reply.mode == "drop" and (reply.drop_after is None or not self.call.stream):
            if reply.drop_after is not None:
                await self.send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
            await self._cut()
            return
        text, finish = self._text()
        is_refusal = reply.mode == "refusal"
        usage = {
            "prompt_tokens": _tokens(
                "".join(str(m.get("content") or "") for m in self.call.messages)
            ),
            "completion_tokens": _tokens(text),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        if self.call.stream:
            await self._stream(text, finish, usage, is_refusal)
        else:
            await self._whole(text, finish, usage, is_refusal)

    def _text(self) -> tuple[str, str]:
        reply = self.reply
        finish = reply.finish_reason or "stop"
        if reply.mode == "refusal":
            return reply.refusal, finish
        if reply.mode == "content":
            return reply.content or "", finish
        if reply.mode == "invalid_json":
            return "Sure! Here is the JSON you asked for: {title: 'one', items: [1, 2,]}", finish
        schema = self.call.schema
        seed = zlib.crc32(json.dumps(self.call.messages, sort_keys=True).encode())
        instance = instance_of(schema, seed) if schema else {"answer": "scripted"}
        if reply.mode == "schema_mismatch":
            instance = mismatch_of(schema or {}, instance)
        text = json.dumps(instance)
        if reply.mode == "truncated":
            text = text[: max(1, int(len(text) * 0.6))]
        return text, finish

    async def _whole(self, text: str, finish: str, usage: dict[str, int], is_refusal: bool) -> None:
        stalled = self.reply.mode == "stall"
        if await self.llm.pause(FOREVER_S if stalled else self.latency_s, self.disconnected):
            return
        message: dict[str, Any] = {"role": "assistant", "content": None if is_refusal else text}
        if is_refusal:
            message["refusal"] = text
        body = {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.call.model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage,
        }
        await _send_json(self.send, 200, body)

    async def _stream(
        self, text: str, finish: str, usage: dict[str, int], is_refusal: bool
    ) -> None:
        pieces = _split(text, self.reply.chunks or self.llm.chunks)
        delay = self.latency_s / (len(pieces) + 1)
        stall_at = (
            max(1, math.floor(len(pieces) * self.reply.stall_after))
            if self.reply.mode == "stall"
            else None
        )
        drop_at = (
            math.floor(len(pieces) * self.reply.drop_after)
            if self.reply.mode in ("drop", "stream_error") and self.reply.drop_after is not None
            else None
        )
        await self.send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream"),
                    (b"cache-control", b"no-cache"),
                ],
            }
        )
        await self._event(self._chunk({"role": "assistant", "content": ""}))
        for number, piece in enumerate(pieces):
            if stall_at is not None and number == stall_at:
                await self.llm.pause(FOREVER_S, self.disconnected)
                return
            if drop_at is not None and number == drop_at:
                if self.reply.mode == "stream_error":
                    await self._event(self.reply.body)
                    done = b"data: [DONE]\n\n"
                    await self.send(
                        {"type": "http.response.body", "body": done, "more_body": False}
                    )
                    return
                await self._cut()
                return
            if await self.llm.pause(delay, self.disconnected):
                return
            key = "refusal" if is_refusal else "content"
            await self._event(self._chunk({key: piece}))
        if await self.llm.pause(delay, self.disconnected):
            return
        await self._event(self._chunk({}, finish))
        options = self.call.body.get("stream_options") or {}
        if options.get("include_usage"):
            await self._event({**self._chunk({}), "choices": [], "usage": usage})
        await self.send(
            {"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False}
        )

    async def _cut(self) -> None:
        """Resets the connection under the ASGI app: no status line, or no end of the body.

        uvicorn does not offer that through ASGI; its h11 ``send`` is a method of the request
        cycle, which holds the transport. Failing that, an exception: uvicorn then closes the
        connection (an answer already started is cut; one not started would be a 500)."""
        transport = getattr(getattr(self.send, "__self__", None), "transport", None)
        if transport is None:
            raise ConnectionAbortedError("scripted drop_connection")
        transport.abort()
        # Let uvicorn see the connection lost before the app returns, so it sends nothing.
        for _ in range(3):
            await asyncio.sleep(0)

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.call.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    async def _event(self, data: dict[str, Any]) -> None:
        body = f"data: {json.dumps(data)}\n\n".encode()
        await self.send({"type": "http.response.body", "body": body, "more_body": True})


def _tokens(text: str) -> int:
    return (len(text) + 3) // 4


def _split(text: str, count: int) -> list[str]:
    if not text:
        return [""]
    count = max(1, min(count, len(text)))
    size = math.ceil(len(text) / count)
    return [text[i : i + size] for i in range(0, len(text), size)]


# --- JSON instances of a schema ------------------------------------------------------------


def valid_instance(schema: dict[str, Any], seed: int = 0) -> Any:
    """``instance_of``, with the rules a schema cannot say kept: a subtask depends only on
    earlier siblings, so every ``depends_on`` is left empty; an epic grouping puts every
    requirement in exactly one epic, so the handles the schema allows are cut into runs of
    ``GROUPING_RUN`` (else the stage's own check would refuse a schema-valid answer)."""
    handles = _grouping_handles(schema)
    if handles is not None:
        runs = [handles[i : i + GROUPING_RUN] for i in range(0, len(handles), GROUPING_RUN)]
        return {
            "epics": [
                {"title": f"Scripted epic {n} of {len(runs)}", "requirements": run}
                for n, run in enumerate(runs, start=1)
            ]
        }
    return _no_forward_dependencies(instance_of(schema, seed=seed))


GROUPING_RUN = 3
"""Requirements per epic in the scripted answer to an epic grouping."""


def _grouping_handles(schema: dict[str, Any]) -> list[str] | None:
    """The requirement handles of an epic grouping's schema; None for any other schema."""
    proposed = schema.get("$defs", {}).get("ProposedEpic", {})
    items = proposed.get("properties", {}).get("requirements", {}).get("items", {})
    enum = items.get("enum")
    return [str(h) for h in enum] if isinstance(enum, list) else None


def _no_forward_dependencies(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: [] if k == "depends_on" else _no_forward_dependencies(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_no_forward_dependencies(v) for v in value]
    return value


def schema_answer(call: RecordedCall) -> Reply:
    """A valid answer to any stage's request: a healthy OpenAI-compatible server."""
    assert call.schema is not None, "every stage asks for structured output"
    return content(json.dumps(valid_instance(call.schema, seed=call.index)))


def instance_of(schema: dict[str, Any], seed: int = 0) -> Any:
    """A valid, deterministic instance of ``schema`` (JSON Schema as pydantic writes it).

    Objects get all their properties; arrays 2 items (within minItems/maxItems); enums pick
    varying values; strings derive from the property name; numbers stay within bounds.
    """
    return _Instances(schema, seed).make(schema, "value")


def mismatch_of(schema: dict[str, Any], instance: Any) -> Any:
    """The instance made invalid: without its first required property (or not an object)."""
    resolved = _Instances(schema, 0).resolve(schema)
    required = resolved.get("required") or []
    if isinstance(instance, dict) and required:
        return {k: v for k, v in instance.items() if k != required[0]}
    return ["not", "the", "expected", "shape"]


class _Instances:
    def __init__(self, root: dict[str, Any], seed: int) -> None:
        self.root = root
        self.seed = seed
        self.counter = 0

    def next(self) -> int:
        self.counter += 1
        return self.counter

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        seen = 0
        while "$ref" in schema and seen < 50:
            seen += 1
            target: Any = self.root
            for part in schema["$ref"].lstrip("#/").split("/"):
                if part:
                    target = target[part.replace("~1", "/").replace("~0", "~")]
            extra = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**target, **extra}
        return schema

    def make(self, schema: dict[str, Any], name: str, depth: int = 0) -> Any:
        schema = self.resolve(schema)
        if depth > 12:
            return None
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            values = schema["enum"]
            return values[(self.seed + self.next()) % len(values)]
        if "allOf" in schema:
            merged: dict[str, Any] = {}
            for part in schema["allOf"]:
                merged.update(self.resolve(part))
            rest = {k: v for k, v in schema.items() if k != "allOf"}
            return self.make({**merged, **rest}, name, depth + 1)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                options = [o for o in schema[key] if self.resolve(o).get("type") != "null"]
                return self.make((options or schema[key])[0], name, depth + 1)
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind is None:
            kind = (
                "object" if "properties" in schema else "array" if "items" in schema else "string"
            )
        if kind == "object":
            return self._object(schema, name, depth)
        if kind == "array":
            return self._array(schema, name, depth)
        if kind == "integer":
            return int(self._number(schema, integer=True))
        if kind == "number":
            return self._number(schema, integer=False)
        if kind == "boolean":
            return self.next() % 2 == 1
        if kind == "null":
            return None
        return self._string(schema, name)

    def _object(self, schema: dict[str, Any], name: str, depth: int) -> dict[str, Any]:
        properties = schema.get("properties") or {}
        result = {key: self.make(sub, key, depth + 1) for key, sub in properties.items()}
        extra = schema.get("additionalProperties")
        if not properties and isinstance(extra, dict) and extra:
            result[f"{name} key"] = self.make(extra, name, depth + 1)
        return result

    def _array(self, schema: dict[str, Any], name: str, depth: int) -> list[Any]:
        count = 2
        if "minItems" in schema:
            count = max(count, int(schema["minItems"]))
        if "maxItems" in schema:
            count = min(count, int(schema["maxItems"]))
        items = schema.get("items")
        prefix = schema.get("prefixItems")
        if isinstance(prefix, list) and prefix:
            return [self.make(p, name, depth + 1) for p in prefix]
        item_name = name[:-1] if name.endswith("s") and len(name) > 1 else name
        if not isinstance(items, dict):
            return [f"{item_name} {self.next()}" for _ in range(count)]
        return [self.make(items, item_name, depth + 1) for _ in range(count)]

    def _number(self, schema: dict[str, Any], *, integer: bool) -> float:
        low = schema.get("minimum")
        high = schema.get("maximum")
        if "exclusiveMinimum" in schema:
            low = schema["exclusiveMinimum"] + (1 if integer else 0.5)
        if "exclusiveMaximum" in schema:
            high = schema["exclusiveMaximum"] - (1 if integer else 0.5)
        if low is None:
            low = 1 if high is None or high >= 1 else high
        if integer:
            low = math.ceil(low)
        span = 5 if high is None else max(0, int(high - low)) + 1
        value = low + (self.seed + self.next()) % max(1, min(span, 5))
        if not integer and (high is None or value + 0.5 <= high):
            value += 0.5
        return float(value) if not integer else value

    def _string(self, schema: dict[str, Any], name: str) -> str:
        number = self.next()
        fmt = schema.get("format")
        if fmt == "date-time":
            value = f"2026-01-{1 + number % 28:02d}T12:00:00Z"
        elif fmt == "date":
            value = f"2026-01-{1 + number % 28:02d}"
        elif fmt == "uuid":
            value = f"00000000-0000-4000-8000-{number:012d}"
        elif fmt == "email":
            value = f"user{number}@example.com"
        elif fmt in ("uri", "url"):
            value = f"https://example.com/{name}/{number}"
        else:
            # The seed (the call's index) keeps texts apart across calls: every card's
            # requirements saying "text 5" would be one requirement stated ten times.
            value = f"{name.replace('_', ' ')} {number} of answer {self.seed}"
        low = int(schema.get("minLength", 0))
        if len(value) < low:
            value = value + "x" * (low - len(value))
        if "maxLength" in schema:
            value = value[: int(schema["maxLength"])]
        return value


__all__ = [
    "Match",
    "RecordedCall",
    "Reply",
    "ScriptedLLM",
    "Targeted",
    "content",
    "context_overflow",
    "drop_connection",
    "hang_before_first_byte",
    "http_error",
    "instance_of",
    "invalid_json",
    "mismatch_of",
    "normal",
    "rate_limited",
    "refusal",
    "schema_mismatch",
    "slow",
    "stall_midway",
    "stream_error",
    "truncated_json",
    "unavailable",
]

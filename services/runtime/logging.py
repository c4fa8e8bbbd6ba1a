"""JSON structured logging that carries the ids of the message being handled.

Handlers bind an envelope's ids once (``bind_envelope``); every log line written while it is
handled, by any module, carries tenant, project, run, correlation and causation ids without
passing them around.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from contracts import Envelope
from services.runtime.tracing import current_ids

CONTEXT_FIELDS = ("tenant_id", "project_id", "run_id", "correlation_id", "causation_id", "event_id")

_context: ContextVar[dict[str, str]] = ContextVar("cardflow_log_context", default={})  # noqa: B039 - never mutated
_service: dict[str, str] = {"service": "cardflow"}


def current_context() -> dict[str, str]:
    return dict(_context.get())


@contextmanager
def bind(**fields: str | None) -> Iterator[None]:
    """Adds fields to every log line written inside the block (this task only)."""
    merged = {**_context.get(), **{k: v for k, v in fields.items() if v is not None}}
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


def bind_envelope(envelope: Envelope) -> Any:
    """Binds the ids of the envelope being handled; its own id becomes ``event_id``."""
    return bind(
        tenant_id=envelope.tenant_id,
        project_id=envelope.project_id,
        run_id=envelope.run_id,
        correlation_id=envelope.correlation_id,
        causation_id=envelope.causation_id,
        event_id=envelope.id,
    )


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": _service["service"],
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(_context.get())
        line.update(current_ids())
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            line.update(extra)
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ctx = " ".join(f"{k}={v}" for k, v in _context.get().items())
        base = (
            f"{self.formatTime(record)} {record.levelname:<7} {_service['service']} {record.name}: "
        )
        text = base + record.getMessage() + (f" [{ctx}]" if ctx else "")
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def configure_logging(service: str, level: str = "INFO", fmt: str = "json") -> None:
    """Routes every logger (ours, FastStream's, aiokafka's, uvicorn's) to one stdout handler."""
    _service["service"] = service
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiokafka reports every transient broker hiccup at WARNING/ERROR; keep it, but not chatter.
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, logging.getLevelName(level)))

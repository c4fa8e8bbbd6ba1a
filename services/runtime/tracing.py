"""OpenTelemetry traces: one trace per run, across the gateway and every stage service.

A run's trace id is derived from its run id (a UUID is 128 bits, a trace id too), so every
process that works on a run puts its spans in the same trace without any context having to
survive the hops that carry none: the outbox (events are published later, by the relay), the
work queue (items run later, outside the handler that planned them) and redeliveries. Each
message also carries a W3C ``traceparent`` header for that trace, so FastStream's telemetry
middleware and any other consumer join it too.

The gateway's HTTP requests are server spans of their own traces (a client's ``traceparent``
is joined); a request that creates, cancels or retries a run links its span to the run's
trace (see ``run_span``).

Off by default: spans are recorded only when ``otel_exporter_otlp_endpoint`` is set (then
exported over OTLP/HTTP in batches). Log lines carry ``trace_id`` and ``span_id`` whenever a
span is current.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Link, NonRecordingSpan, Span, SpanContext, TraceFlags

from services.runtime.settings import Settings

TRACER = "cardflow"


def run_trace_id(run_id: str) -> int:
    """The trace id of a run: its UUID's 128 bits (any other id: the first 128 of a hash)."""
    try:
        value = uuid.UUID(run_id).int
    except ValueError:
        value = int.from_bytes(hashlib.sha256(run_id.encode()).digest()[:16], "big")
    return value or 1  # all zeros is not a valid trace id


def _run_root_span_id(run_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"root:{run_id}".encode()).digest()[:8], "big") or 1


def run_span_context(run_id: str) -> SpanContext:
    """The run's (never recorded) root: what every span of the run hangs under."""
    return SpanContext(
        trace_id=run_trace_id(run_id),
        span_id=_run_root_span_id(run_id),
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )


def traceparent(run_id: str) -> str:
    """The W3C ``traceparent`` header of a message of the run."""
    ctx = run_span_context(run_id)
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-01"


@contextmanager
def run_span(name: str, run_id: str | None, **attributes: Any) -> Iterator[Span]:
    """A span in the run's trace (or in the current context when there is no run).

    Started from another trace (the gateway's HTTP request that creates, cancels or retries
    the run), the span links to that trace's current span, which gets the run id: from the
    request one finds the run's trace and back."""
    parent = (
        trace.set_span_in_context(NonRecordingSpan(run_span_context(run_id))) if run_id else None
    )
    links = []
    outer = trace.get_current_span()
    outer_context = outer.get_span_context()
    if run_id and outer_context.is_valid and outer_context.trace_id != run_trace_id(run_id):
        links.append(Link(outer_context))
        outer.set_attribute("cardflow.run_id", run_id)
    tracer = trace.get_tracer(TRACER)
    values = {k: v for k, v in attributes.items() if v is not None}
    if run_id:
        values["cardflow.run_id"] = run_id  # searchable in tracing UIs, beside the trace id
    with tracer.start_as_current_span(name, context=parent, attributes=values, links=links) as span:
        yield span


def current_ids() -> dict[str, str]:
    """trace_id and span_id of the current span, for log lines; empty when none records."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return {}
    return {"trace_id": f"{span_context.trace_id:032x}", "span_id": f"{span_context.span_id:016x}"}


def configure_tracing(settings: Settings) -> Callable[[], None]:
    """Installs an exporting tracer provider when an OTLP endpoint is set; returns the
    function that flushes and stops it (a no-op when tracing is off)."""
    endpoint = settings.otel_exporter_otlp_endpoint
    if not endpoint:
        return lambda: None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create(
        {"service.name": settings.service_name, "service.instance.id": settings.instance_id}
    )
    provider = TracerProvider(resource=resource)
    exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
    provider.add_span_processor(
        BatchSpanProcessor(exporter, schedule_delay_millis=settings.otel_export_interval_ms)
    )
    trace.set_tracer_provider(provider)

    def stop() -> None:
        provider.shutdown()

    return stop


__all__ = [
    "configure_tracing",
    "current_ids",
    "run_span",
    "run_span_context",
    "run_trace_id",
    "traceparent",
]

"""A run's trace id comes from its run id, so every service puts its spans in one trace."""

from __future__ import annotations

import re
import uuid

from services.runtime.tracing import run_span_context, run_trace_id, traceparent


def test_a_uuid_run_id_is_its_trace_id_and_any_other_id_hashes_to_a_stable_one() -> None:
    run_id = str(uuid.uuid4())
    assert run_trace_id(run_id) == uuid.UUID(run_id).int
    assert run_trace_id("not-a-uuid") == run_trace_id("not-a-uuid") != 0
    assert run_trace_id("not-a-uuid") != run_trace_id("not-a-uuid-2")
    assert run_trace_id(str(uuid.UUID(int=0))) != 0, "all zeros is not a valid trace id"


def test_the_traceparent_header_names_the_runs_trace_sampled() -> None:
    run_id = str(uuid.uuid4())
    header = traceparent(run_id)
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", header)
    context = run_span_context(run_id)
    assert header == f"00-{uuid.UUID(run_id).hex}-{context.span_id:016x}-01"
    assert context.is_valid
    assert context.is_remote

"""Observability end to end: after a pipeline run that meets a rate limit, a refusal, the
fleet's in-flight ceiling and a poison message, every service's /metrics holds the
catalogue's metrics it is meant to export (services/runtime/metrics.py), and Prometheus
(Debian's package) scraping the stack answers every query of the Grafana dashboards."""

from __future__ import annotations

import http.server
import json
import math
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from prometheus_client.parser import text_string_to_metric_families

from contracts import topics
from services.runtime import metrics
from tests.deploy.manifests import keda_prometheus_queries
from tests.e2e.test_pipeline import start_pipeline
from tests.faults.kafka_tools import produce
from tests.ops.dashboards import dashboard_queries
from tests.ops.prometheus_config import find_tool, render_scrape_config
from tests.support.infra import free_port
from tests.support.scripted_llm import RecordedCall, ScriptedLLM, Targeted, rate_limited, refusal
from tests.support.scripted_llm import schema_answer as answer
from tests.support.stack import STAGES, PipelineStack, wait_for_run
from tests.support.wait import until_sync

pytestmark = [pytest.mark.e2e, pytest.mark.kafka]

STACK_BACKENDS = ("sqlite",)

# Whoever exports what (the catalogue's own names, as prometheus_client registers them).
EVERY_SERVICE = {
    "cardflow_outbox_pending",
    "cardflow_outbox_oldest_age_seconds",
    "cardflow_outbox_published",
    "cardflow_consumer_rebalances",
    "faststream_received_messages",
    "faststream_received_processed_messages",
    "faststream_received_processed_messages_duration_seconds",
}
STAGE_SERVICE = EVERY_SERVICE | {
    "cardflow_llm_request_duration_seconds",
    "cardflow_llm_requests_in_flight",
    "cardflow_llm_http_calls",
    "cardflow_llm_tokens",
    "cardflow_llm_cost_usd",
    "cardflow_llm_slot_wait_seconds",
    "cardflow_items",
    "cardflow_item_duration_seconds",
    "cardflow_items_running",
    "cardflow_item_heartbeat_age_seconds",
    # Every stage's part of a pipeline finishes, the streaming ones too (stories, subtasks:
    # the stage before closes their run once it is done).
    "cardflow_stage_run_duration_seconds",
}

GATEWAY = EVERY_SERVICE | {
    "cardflow_http_request_duration_seconds",
    "cardflow_http_long_poll_duration_seconds",
    "cardflow_read_model_staleness_seconds",
    "cardflow_read_model_last_projected_timestamp_seconds",
    "cardflow_runs_started",
    "cardflow_runs_finished",
    "cardflow_run_duration_seconds",
    "cardflow_consumer_lag",
    "cardflow_dead_letters_waiting",
}
# Only where the event happened: the 429 (a stage), the poison message (its consumer).
SOMEWHERE = {"cardflow_llm_rate_limit_waits", "cardflow_dead_letters"}


def is_subtasks(call: RecordedCall) -> bool:
    return "subtask" in (call.schema_name or "").lower()


@pytest.fixture(scope="module")
def llm() -> Iterator[ScriptedLLM]:
    with ScriptedLLM(latency_s=0.2) as server:
        yield server


@pytest.fixture(scope="module")
def stack_env(llm: ScriptedLLM, traces: TraceCollector) -> dict[str, str]:
    return {
        "CARDFLOW_OTEL_EXPORTER_OTLP_ENDPOINT": traces.url,
        "CARDFLOW_OTEL_EXPORT_INTERVAL_MS": "300",
        "CARDFLOW_LOG_FORMAT": "json",
        "CARDFLOW_LLM_BASE_URL": llm.base_url,
        "CARDFLOW_LLM_API_KEY": "sk-test-not-a-secret",
        "CARDFLOW_LLM_MODEL": "scripted-model",
        "CARDFLOW_LLM_TIMEOUT_S": "30",
        # Below what four services want at once: calls wait for the fleet's slots.
        "CARDFLOW_LLM_MAX_IN_FLIGHT": "2",
        "CARDFLOW_WORK_RETRY_BASE_S": "0.2",
        "CARDFLOW_LAG_INTERVAL_S": "1",
        "CARDFLOW_DLQ_WAITING_INTERVAL_S": "1",
    }


def scrape(url: str) -> set[str]:
    """The metric family names a /metrics endpoint exports (samples, not only help text)."""
    text = httpx.get(url, timeout=10).text
    return {f.name for f in text_string_to_metric_families(text) if f.samples}


def metrics_urls(stack: PipelineStack) -> dict[str, str]:
    urls = {s: f"http://127.0.0.1:{stack.metrics_ports[s]}/metrics" for s in STAGES}
    return {**urls, "gateway": f"{stack.url}/metrics"}


def test_every_service_exports_its_metrics_after_a_run(
    stack: PipelineStack, llm: ScriptedLLM
) -> None:
    # The first rule that matches decides: one subtask call refused, the very first call 429.
    script = Targeted(answer).on(is_subtasks, refusal()).on("", rate_limited("1"))
    llm.reset(script)
    with stack.client() as client:
        _, created = start_pipeline(client)
        final = wait_for_run(client, created["id"], etag=f'"v{created["version"]}"')[-1]
    assert final["status"] == "partial", (final, stack.logs())
    poisoned = stack.prefix + topics.CARDS_ANALYZED.name
    produce(stack.bootstrap, [(poisoned, b"poison", b"\x00not an envelope", [])])

    urls = metrics_urls(stack)
    wanted = {name: STAGE_SERVICE for name in STAGES} | {"gateway": GATEWAY}

    def exported() -> dict[str, set[str]] | None:
        found = {name: scrape(url) for name, url in urls.items()}
        everywhere = set().union(*found.values())
        complete = all(wanted[n] <= found[n] for n in found) and everywhere >= SOMEWHERE
        return found if complete else None

    try:
        found = until_sync(exported, timeout=60, interval=1.0, what="every metric exported")
    except AssertionError:
        found = {name: scrape(url) for name, url in urls.items()}
        missing = {n: sorted(wanted[n] - found[n]) for n in found if wanted[n] - found[n]}
        absent = sorted(SOMEWHERE - set().union(*found.values()))
        raise AssertionError(f"missing per service: {missing}; nowhere: {absent}") from None

    # The catalogue holds nothing that no service exports.
    catalogue = {
        name
        for collector in vars(metrics).values()
        if hasattr(collector, "_name") and hasattr(collector, "describe")
        for name in [collector._name]
    }
    unexported = catalogue - set().union(*found.values())
    assert not unexported, f"declared but never exported: {sorted(unexported)}"


@pytest.fixture
def prometheus(stack: PipelineStack, tmp_path: Path) -> Iterator[str]:
    """Debian's Prometheus scraping the stack every second, with cardflow's rules."""
    binary = find_tool("prometheus")
    assert binary, "prometheus is missing: run `make prometheus` (Debian's package)"
    targets = {s: f"127.0.0.1:{stack.metrics_ports[s]}" for s in STAGES}
    targets["gateway"] = f"127.0.0.1:{stack.port}"
    config = tmp_path / "prometheus.yml"
    config.write_text(render_scrape_config(targets, scrape_interval="1s"))
    port = free_port()
    log = (tmp_path / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        until_sync(lambda: _ready(url), timeout=60, interval=0.5, what="prometheus ready")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def query(url: str, expr: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10)
    body = response.json()
    assert body.get("status") == "success", (expr, body)
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def has_data(result: list[dict[str, Any]]) -> bool:
    """At least one series with a number (a quantile of nothing is NaN: no data)."""
    return any(not math.isnan(float(series["value"][1])) for series in result)


def test_prometheus_scrapes_the_stack_and_every_dashboard_and_scaling_query_returns_data(
    stack: PipelineStack, llm: ScriptedLLM, prometheus: str
) -> None:
    jobs = {*STAGES, "gateway"}

    def all_up() -> bool:
        up = {s["metric"]["job"]: s["value"][1] for s in query(prometheus, "up")}
        return jobs <= set(up) and all(up[j] == "1" for j in jobs)

    until_sync(all_up, timeout=60, interval=1.0, what="every service scraped and up")
    # A run while Prometheus watches, so rates and quantiles have increases to show.
    llm.reset(Targeted(answer).on(is_subtasks, refusal()).on("", rate_limited("1")))
    with stack.client() as client:
        _, created = start_pipeline(client)
        final = wait_for_run(client, created["id"], etag=f'"v{created["version"]}"')[-1]
    assert final["status"] == "partial", (final, stack.logs())
    poisoned = stack.prefix + topics.CARDS_ANALYZED.name
    produce(stack.bootstrap, [(poisoned, b"poison", b"\x00not an envelope", [])])

    queries = dashboard_queries(include_variables=True)
    assert queries, "no dashboard queries found"
    pending = {(q.dashboard, q.panel, q.ref_id): q.expr for q in queries}
    # What KEDA scales the stages on must answer too (deploy/k8s).
    scaling = keda_prometheus_queries()
    assert len(scaling) == len(STAGES), scaling
    pending |= {("KEDA", name, "query"): expr for name, expr in scaling.items()}

    def answered() -> bool:
        for key, expr in list(pending.items()):
            if has_data(query(prometheus, expr)):
                del pending[key]
        return not pending

    try:
        until_sync(answered, timeout=90, interval=2.0, what="every dashboard query to answer")
    except AssertionError:
        empty = "\n".join(f"{d} / {p} / {r}: {e}" for (d, p, r), e in sorted(pending.items()))
        raise AssertionError(f"dashboard queries without data:\n{empty}") from None


@dataclass(frozen=True)
class SpanRecord:
    service: str
    trace_id: str
    span_id: str
    name: str
    attributes: dict[str, str]
    links: list[tuple[str, str]]


class TraceCollector:
    """A minimal OTLP/HTTP receiver on 127.0.0.1: keeps every span the services export."""

    def __init__(self) -> None:
        self.details: list[SpanRecord] = []
        self._lock = threading.Lock()
        collector = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                collector._receive(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()
                self.wfile.write(trace_service_pb2.ExportTraceServiceResponse().SerializeToString())

            def log_message(self, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def _receive(self, body: bytes) -> None:
        request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            service = attributes.get("service.name", "")
            for scope_spans in resource_spans.scope_spans:
                with self._lock:
                    self.details += [
                        SpanRecord(
                            service,
                            span.trace_id.hex(),
                            span.span_id.hex(),
                            span.name,
                            {a.key: a.value.string_value for a in span.attributes},
                            [(link.trace_id.hex(), link.span_id.hex()) for link in span.links],
                        )
                        for span in scope_spans.spans
                    ]

    def find(self, **where: Any) -> list[SpanRecord]:
        with self._lock:
            return [r for r in self.details if all(getattr(r, k) == v for k, v in where.items())]

    @property
    def spans(self) -> list[tuple[str, str, str]]:
        """(service.name, trace id in hex, span name) of every span so far."""
        with self._lock:
            return [(r.service, r.trace_id, r.name) for r in self.details]

    def of_trace(self, trace_id: str) -> list[tuple[str, str]]:
        return [(service, name) for service, t, name in self.spans if t == trace_id]

    def __enter__(self) -> TraceCollector:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def traces() -> Iterator[TraceCollector]:
    with TraceCollector() as collector:
        yield collector


def test_one_trace_per_run_across_every_service_and_json_logs_carry_its_id(
    stack: PipelineStack, llm: ScriptedLLM, traces: TraceCollector
) -> None:
    llm.reset(answer)
    client_trace = uuid.uuid4().hex
    with stack.client() as client:
        # The client's own trace context: the gateway's request span joins it.
        _, created = start_pipeline(client, {"traceparent": f"00-{client_trace}-{'1' * 16}-01"})
        final = wait_for_run(client, created["id"], etag=f'"v{created["version"]}"')[-1]
    assert final["status"] == "succeeded", (final, stack.logs())
    trace_id = f"{uuid.UUID(created['id']).int:032x}"

    def spans_from_everyone() -> list[tuple[str, str]]:
        spans = traces.of_trace(trace_id)
        services = {service for service, _ in spans}
        return spans if services >= {*STAGES, "gateway"} else []

    spans = until_sync(spans_from_everyone, timeout=30, interval=0.5, what="spans of the run")
    names = {name for _, name in spans}
    assert "run accepted" in names
    for stage in STAGES:
        assert (stage, f"{stage} item") in spans, f"{stage}: no item span in the run's trace"
        assert (stage, f"llm {stage}") in spans, f"{stage}: no LLM span in the run's trace"

    # Every span the stages recorded for the run's items belongs to the run's one trace
    # (spans are exported in batches: the last items' may arrive after the first services').
    def item_spans() -> list[Any]:
        found = [
            r
            for r in traces.find()
            if r.name.endswith(" item") and r.attributes.get("cardflow.run_id") == created["id"]
        ]
        return found if len(found) >= final["counts"]["total"] else []

    items = until_sync(item_spans, timeout=30, interval=0.5, what="a span for every item")
    assert {r.trace_id for r in items} == {trace_id}

    # HTTP -> run: the request that created the run is a server span in the client's trace,
    # marked with the run id, and the run's first span links to it.
    (request,) = until_sync(
        lambda: traces.find(
            service="gateway", name="POST /v1/projects/{project_id}/runs", trace_id=client_trace
        ),
        timeout=30,
        what="the run-creating request's span",
    )
    assert request.attributes.get("cardflow.run_id") == created["id"]
    (accepted,) = traces.find(service="gateway", name="run accepted", trace_id=trace_id)
    assert accepted.links == [(client_trace, request.span_id)]
    # Probes and scrapes make no spans.
    assert not [r for r in traces.find(service="gateway") if "healthz" in r.name]

    # JSON log lines written inside a span of the run carry its trace id.
    log = stack.processes["analysis"].log_path.read_text()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    traced = [line for line in lines if line.get("run_id") == created["id"] and "trace_id" in line]
    assert traced, "no log line of the run carries a trace id"
    assert {line["trace_id"] for line in traced} == {trace_id}

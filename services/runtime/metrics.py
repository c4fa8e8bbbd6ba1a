"""cardflow's Prometheus metrics (the catalogue), and the /metrics endpoint of processes
without HTTP.

Metrics live in prometheus_client's default registry, so whatever serves that registry shows
them: the gateway's ``GET /metrics`` on its own port, and for a stage service (which has no
HTTP server) the small one :func:`serve_metrics` starts when ``metrics_port`` is set. Each
process is one service, so the service is the scrape target's ``job``, not a label here.
Labels stay bounded: stage, model, outcome, error code, topic, consumer group, partition,
route template; never a run, item or project id. FastStream's Prometheus middleware adds
``faststream_*`` message metrics (received, processed with duration, in process, published).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import Counter, Gauge, Histogram, make_wsgi_app

from services.runtime.backoff import sleep_or_stop

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger(__name__)

# An LLM answer may take minutes (long outputs, slow local models): buckets up to 600 s.
LLM_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600)
ITEM_BUCKETS = LLM_BUCKETS
RUN_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
STALENESS_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

# --- LLM calls (stage services) --------------------------------------------------------
LLM_REQUEST_DURATION = Histogram(
    "cardflow_llm_request_duration_seconds",
    "One structured LLM answer (its HTTP calls, a repair re-ask included), by stage, model "
    "and outcome (ok, cached, or the error code).",
    ["stage", "model", "outcome"],
    buckets=LLM_BUCKETS,
)
LLM_REQUESTS_IN_FLIGHT = Gauge(
    "cardflow_llm_requests_in_flight",
    "LLM answers being waited for in this process, by stage.",
    ["stage"],
)
LLM_HTTP_CALLS = Counter(
    "cardflow_llm_http_calls",
    "HTTP calls to the LLM provider (retries and repair re-asks each count), by stage and model.",
    ["stage", "model"],
)
LLM_TOKENS = Counter(
    "cardflow_llm_tokens",
    "LLM tokens paid for, by stage, model and kind (input, output); cached answers count none.",
    ["stage", "model", "kind"],
)
LLM_COST = Counter(
    "cardflow_llm_cost_usd",
    "LLM cost in US dollars at CARDFLOW_LLM_PRICES, by stage and model.",
    ["stage", "model"],
)
LLM_SLOT_WAIT = Histogram(
    "cardflow_llm_slot_wait_seconds",
    "Time an LLM call waited for a slot under the fleet-wide limits (in-flight ceiling, "
    "tokens per minute, a run's budget) before it was sent.",
    buckets=LLM_BUCKETS,
)
LLM_RATE_LIMIT_WAITS = Counter(
    "cardflow_llm_rate_limit_waits",
    "Waits caused by rate limits, by source: fleet (the fleet-wide limits held a call back) "
    "or provider (the provider answered 429 and the item was scheduled again).",
    ["source"],
)

# --- Items (stage services) ------------------------------------------------------------
ITEMS = Counter(
    "cardflow_items",
    "Item attempts that ended, by stage, outcome (succeeded; retried: a retryable error, "
    "scheduled again; failed: for good; cancelled; released: handed back at shutdown) and "
    "error code (empty when none).",
    ["stage", "outcome", "code"],
)
ITEM_DURATION = Histogram(
    "cardflow_item_duration_seconds",
    "One attempt at an item, from claim to its end, by stage and outcome.",
    ["stage", "outcome"],
    buckets=ITEM_BUCKETS,
)
ITEMS_WAITING = Gauge(
    "cardflow_items_waiting",
    "Items ready and waiting for a replica to take them (the stage's queue depth in its "
    "database, the same for every replica: aggregate with max), by stage. What autoscaling "
    "follows: Kafka's lag does not show items a handler has recorded.",
    ["stage"],
)
ITEMS_RUNNING = Gauge(
    "cardflow_items_running",
    "Items this process is working on now, by stage.",
    ["stage"],
)
ITEM_HEARTBEAT_AGE = Gauge(
    "cardflow_item_heartbeat_age_seconds",
    "Seconds since the stalest running item of this process renewed its lease (0 when none "
    "runs). Grows past the heartbeat interval when the event loop is blocked.",
    ["stage"],
)
STAGE_RUN_DURATION = Histogram(
    "cardflow_stage_run_duration_seconds",
    "A run's time in one stage, from its request to its last item, by stage and outcome "
    "(succeeded, partial, failed, cancelled).",
    ["stage", "outcome"],
    buckets=RUN_BUCKETS,
)

# --- Outbox (every service) ------------------------------------------------------------
OUTBOX_PENDING = Gauge(
    "cardflow_outbox_pending",
    "Events written to this service's outbox and not yet published to Kafka.",
)
OUTBOX_OLDEST_AGE = Gauge(
    "cardflow_outbox_oldest_age_seconds",
    "Age of the oldest unpublished event in this service's outbox (0 when empty).",
)
OUTBOX_PUBLISHED = Counter(
    "cardflow_outbox_published",
    "Events published from this service's outbox.",
)

# --- Gateway ---------------------------------------------------------------------------
HTTP_REQUEST_DURATION = Histogram(
    "cardflow_http_request_duration_seconds",
    "Gateway HTTP requests, by method, route template and status code; long-polls "
    "(?wait=) are in cardflow_http_long_poll_duration_seconds instead.",
    ["method", "route", "status"],
    buckets=HTTP_BUCKETS,
)
# A long-poll holds a request open for up to 30 s by design: its own histogram, apart from
# the latency of ordinary requests.
HTTP_LONG_POLL_DURATION = Histogram(
    "cardflow_http_long_poll_duration_seconds",
    "Long-polls of a run (GET /v1/runs/{run_id}?wait=), by outcome: changed (answered with "
    "a new version), unchanged (304 at the end of the wait) or error.",
    ["outcome"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 15, 20, 25, 30, 35),
)
READ_MODEL_STALENESS = Histogram(
    "cardflow_read_model_staleness_seconds",
    "Time from an event's creation to its projection into the gateway's read model, by topic.",
    ["topic"],
    buckets=STALENESS_BUCKETS,
)
READ_MODEL_LAST_PROJECTED = Gauge(
    "cardflow_read_model_last_projected_timestamp_seconds",
    "Unix time of the last event projected into the read model, by topic.",
    ["topic"],
)
RUNS_STARTED = Counter(
    "cardflow_runs_started",
    "Runs accepted by the gateway, by kind (pipeline, or the stage name).",
    ["kind"],
)
RUNS_FINISHED = Counter(
    "cardflow_runs_finished",
    "Runs that reached a terminal status, by kind and status.",
    ["kind", "status"],
)
RUN_DURATION = Histogram(
    "cardflow_run_duration_seconds",
    "Runs from acceptance to their terminal status, by kind (pipeline, or the stage name) "
    "and status.",
    ["kind", "status"],
    buckets=RUN_BUCKETS,
)
CONSUMER_LAG = Gauge(
    "cardflow_consumer_lag",
    "Messages not yet consumed, by consumer group, topic and partition (end offset minus the "
    "group's committed offset), read from the broker by the gateway every "
    "CARDFLOW_LAG_INTERVAL_S.",
    ["group", "topic", "partition"],
)
CONSUMER_REBALANCES = Counter(
    "cardflow_consumer_rebalances",
    "Partition assignments this process's consumers received, by consumer group.",
    ["group"],
)

DB_STATEMENTS = Counter(
    "cardflow_db_statements",
    "SQL statements this process sent to its databases, by kind: read (SELECT) or write "
    "(everything else, transaction control included).",
    ["kind"],
)
LONG_POLLS_WAITING = Gauge(
    "cardflow_long_polls_waiting",
    "Long-polls of runs this gateway process holds now (bounded by CARDFLOW_POLL_MAX_WAITERS).",
)

DEAD_LETTERS = Counter(
    "cardflow_dead_letters",
    "Messages dead-lettered, by original topic, consumer group and error code.",
    ["topic", "consumer", "code"],
)

DEAD_LETTERS_WAITING = Gauge(
    "cardflow_dead_letters_waiting",
    "Dead letters not replayed yet, by original topic (counted by the gateway every "
    "dlq_waiting_interval_s; also shown by `cardflow dlq list`).",
    ["topic"],
)


class LoopPulse:
    """The event loop's sign of life, beaten by a task on the loop and read from other
    threads (the metrics server's), which keep answering while the loop is blocked."""

    PERIOD_S = 1.0

    def __init__(self) -> None:
        self._last = time.monotonic()

    def age_s(self) -> float:
        """Seconds since the loop last ran the pulse: about PERIOD_S at most while healthy."""
        return time.monotonic() - self._last

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._last = time.monotonic()
            await sleep_or_stop(stop, self.PERIOD_S)


EVENT_LOOP_PULSE_AGE = Gauge(
    "cardflow_event_loop_pulse_age_seconds",
    "Seconds since this process's event loop last ran its 1 s pulse: about 1 while it runs "
    "freely, growing while something blocks it (and with it heartbeats, leases and Kafka).",
)

LIVENESS_PATH = "/livez"


def serve_metrics(
    port: int,
    host: str = "0.0.0.0",
    *,
    pulse: LoopPulse | None = None,
    stall_limit_s: float = 60.0,
) -> Callable[[], None]:
    """Starts an HTTP server on ``port`` (0: none), in its own thread, and returns the
    function that stops it: ``/metrics`` (the default registry) and ``/livez``, which says
    503 once ``pulse`` is older than ``stall_limit_s`` (a blocked event loop, which the
    server's own thread would not notice). All interfaces by default: Prometheus scrapes
    from elsewhere."""
    if port == 0:
        return lambda: None
    app = _with_liveness(make_wsgi_app(), pulse, stall_limit_s)
    server = make_server(host, port, app, _ThreadingWSGIServer, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True)
    thread.start()
    log.info("serving metrics", extra={"fields": {"port": port}})

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return stop


def _with_liveness(
    metrics_app: WSGIApplication, pulse: LoopPulse | None, stall_limit_s: float
) -> WSGIApplication:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != LIVENESS_PATH:
            return metrics_app(environ, start_response)
        age = pulse.age_s() if pulse is not None else 0.0
        headers = [("Content-Type", "text/plain; charset=utf-8")]
        if age > stall_limit_s:
            start_response("503 Service Unavailable", headers)
            return [f"event loop stalled: no pulse for {age:.0f} s\n".encode()]
        start_response("200 OK", headers)
        return [b"ok\n"]

    return app


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # the stdlib's name
        """Scrapes every few seconds would flood the log."""

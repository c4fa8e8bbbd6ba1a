"""The runtime's Prometheus metrics, and the /metrics endpoint of processes without HTTP.

Metrics live in prometheus_client's default registry, so whatever serves that registry shows
them: the gateway's ``GET /metrics`` on its own port, and for a stage service (which has no
HTTP server) the small one :func:`serve_metrics` starts when ``metrics_port`` is set.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from prometheus_client import Counter, Gauge, start_http_server

log = logging.getLogger(__name__)

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


def serve_metrics(port: int, host: str = "0.0.0.0") -> Callable[[], None]:
    """Starts an HTTP server for the default registry on ``port`` (0: none) and returns the
    function that stops it. All interfaces by default: Prometheus scrapes from elsewhere."""
    if port == 0:
        return lambda: None
    server, thread = start_http_server(port, addr=host)
    log.info("serving metrics", extra={"fields": {"port": port}})

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return stop

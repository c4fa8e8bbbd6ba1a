"""The pure parts behind the metrics: lag arithmetic, a stage's outcome, long-poll detection,
and the gateway's request middleware labelling by route template."""

from __future__ import annotations

from fastapi import FastAPI, Response
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from contracts.pipeline import ItemState
from services.gateway.request_metrics import RequestMetrics, is_long_poll
from services.runtime.lag import lag_of
from services.runtime.work.queue import stage_outcome


def test_lag_is_end_minus_committed_per_group_and_partition_never_negative() -> None:
    committed = {
        "g1": {("t", 0): 5, ("t", 1): 10},
        "g2": {("t", 0): 7, ("gone", 0): 3},
    }
    ends = {("t", 0): 9, ("t", 1): 8}  # t/1 ends below the commit: a truncated partition
    assert lag_of(committed, ends) == {
        ("g1", "t", 0): 4,
        ("g1", "t", 1): 0,
        ("g2", "t", 0): 2,
    }


def test_a_stage_outcome_says_cancelled_succeeded_failed_or_partial() -> None:
    ok, failed = ItemState.SUCCEEDED, ItemState.FAILED
    assert stage_outcome(True, [ok]) == "cancelled"
    assert stage_outcome(False, [ok, ok]) == "succeeded"
    assert stage_outcome(False, []) == "succeeded"
    assert stage_outcome(False, [failed, ItemState.CANCELLED]) == "failed"
    assert stage_outcome(False, [ok, failed]) == "partial"


def test_only_a_get_of_a_run_with_a_positive_wait_is_a_long_poll() -> None:
    route = "/v1/runs/{run_id}"
    assert is_long_poll("GET", route, b"wait=25")
    assert not is_long_poll("GET", route, b"wait=0")
    assert not is_long_poll("GET", route, b"wait=soon")
    assert not is_long_poll("GET", route, b"")
    assert not is_long_poll("POST", route, b"wait=25")
    assert not is_long_poll("GET", "/v1/runs", b"wait=25")


def _sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_requests_are_counted_by_route_template_and_long_polls_apart() -> None:
    app = FastAPI()
    app.add_middleware(RequestMetrics)

    @app.get("/v1/runs/{run_id}")
    async def run(run_id: str, wait: int = 0) -> Response:
        return Response(status_code=304 if wait else 200)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    plain = {"method": "GET", "route": "/v1/runs/{run_id}", "status": "200"}
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    failed = {"method": "GET", "route": "/boom", "status": "500"}
    other = {"method": "other", "route": "/v1/runs/{run_id}", "status": "405"}
    count = "cardflow_http_request_duration_seconds_count"
    polls = "cardflow_http_long_poll_duration_seconds_count"
    before = {
        "plain": _sample(count, plain),
        "unmatched": _sample(count, unmatched),
        "failed": _sample(count, failed),
        "other": _sample(count, other),
        "poll": _sample(polls, {"outcome": "unchanged"}),
    }
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/v1/runs/r-1").status_code == 200
        assert client.get("/v1/runs/r-2").status_code == 200
        assert client.get("/v1/runs/r-3?wait=5").status_code == 304
        assert client.get("/nowhere/abc").status_code == 404
        assert client.get("/boom").status_code == 500
        assert client.request("BREW", "/v1/runs/r-1").status_code == 405
    assert _sample(count, plain) - before["plain"] == 2, "one series for every run id"
    assert _sample(polls, {"outcome": "unchanged"}) - before["poll"] == 1
    assert _sample(count, unmatched) - before["unmatched"] == 1
    assert _sample(count, failed) - before["failed"] == 1
    assert _sample(count, other) - before["other"] == 1

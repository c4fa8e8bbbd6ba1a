"""Every metric the dashboards and rules use is one the code declares (cardflow's catalogue
in services.runtime.metrics, FastStream's middleware), under the name it is scraped as, and
every label they select or group by is one that metric has."""

from __future__ import annotations

import pytest

from tests.ops.catalogue import (
    all_metrics,
    cardflow_metrics,
    faststream_metrics,
    label_problems,
    metric_names,
    samples,
)
from tests.ops.dashboards import dashboard_queries
from tests.ops.prometheus_config import rules


def _expressions() -> list[tuple[str, str]]:
    """(where, PromQL) of every rule and dashboard query."""
    found = [(f"rule {r.file}/{r.name}", r.expr) for r in rules()]
    found += [
        (f"dashboard {q.dashboard} / {q.panel} / {q.ref_id}", q.expr)
        for q in dashboard_queries(include_variables=True)
    ]
    return found


def test_the_catalogue_is_read_from_the_code() -> None:
    names = {m.name for m in cardflow_metrics()}
    assert {"cardflow_items", "cardflow_consumer_lag", "cardflow_dead_letters"} <= names
    assert len(names) == len(cardflow_metrics()) >= 25
    assert "faststream_received_processed_messages_duration_seconds" in {
        m.name for m in faststream_metrics()
    }
    exposed = samples()
    assert "cardflow_items_total" in exposed
    assert "cardflow_items" not in exposed
    assert "cardflow_llm_request_duration_seconds_bucket" in exposed
    assert "cardflow_llm_request_duration_seconds" not in exposed
    assert "faststream_received_messages_total" in exposed


def test_rules_and_dashboards_use_only_exported_metrics() -> None:
    exposed = samples()
    unknown = []
    for where, expr in _expressions():
        unknown += [f"{where}: {name}" for name in sorted(metric_names(expr) - set(exposed))]
    assert not unknown, "metrics no service exports (or not under this name):\n" + "\n".join(
        unknown
    )


def test_rules_and_dashboards_use_only_labels_the_metrics_have() -> None:
    problems = []
    for where, expr in _expressions():
        problems += [f"{where}: {p}" for p in label_problems(expr)]
    assert not problems, "\n".join(problems)


def test_dashboards_and_rules_cover_the_catalogue() -> None:
    """Each of cardflow's metrics is shown or alerted on somewhere."""
    used = set().union(*(metric_names(expr) for _, expr in _expressions()))
    unused = [m.name for m in cardflow_metrics() if not set(m.samples) & used]
    assert not unused, f"metrics on no dashboard and in no rule: {unused}"


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        # A counter's name without _total is not scraped.
        ("rate(cardflow_items[5m])", "unknown"),
        # A histogram is queried by its _bucket/_sum/_count.
        ("cardflow_llm_request_duration_seconds", "unknown"),
        ("rate(cardflow_no_such_metric_total[5m])", "unknown"),
        # The slot-wait histogram has no stage label.
        ("sum by (stage, le) (rate(cardflow_llm_slot_wait_seconds_bucket[5m]))", "label"),
        ('cardflow_consumer_lag{consumer="x"}', "label"),
        ('sum by (code) (rate(faststream_received_messages_total{status="error"}[5m]))', "label"),
    ],
)
def test_the_checks_catch_mistakes(expr: str, problem: str) -> None:
    unknown = metric_names(expr) - set(samples())
    labels = label_problems(expr)
    assert unknown if problem == "unknown" else labels, (expr, unknown, labels)


def test_names_in_strings_and_recording_rules_are_not_metrics() -> None:
    assert metric_names('cardflow:lag:sum{group=~"cardflow_x"} + cardflow_items_total') == {
        "cardflow_items_total"
    }
    assert all(m.labels == tuple(dict.fromkeys(m.labels)) for m in all_metrics())

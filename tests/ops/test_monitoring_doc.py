"""The monitoring guide (docs/operations.md, from "Monitoring" on)
tells the truth about the code: its metric tables list exactly the metrics the code declares,
with their types and labels; it has a section for every alert and describes every
dashboard."""

from __future__ import annotations

import re

from tests.ops import docs
from tests.ops.catalogue import all_metrics
from tests.ops.dashboards import dashboards
from tests.ops.prometheus_config import rules

_NAME = re.compile(r"^`((?:cardflow|faststream)_\w+)`$")


def _documented_metrics() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Metric (as queried) -> (type, labels) from every table row of the Metrics section
    whose first cell is a metric name."""
    section = docs.find_section("Metrics")
    assert section is not None, f"no 'Metrics' section in {[p.name for p in docs.DOCS]}"
    found: dict[str, tuple[str, tuple[str, ...]]] = {}
    for cells in docs.table_rows(section.body):
        match = _NAME.match(cells[0])
        if not match:
            continue
        assert match.group(1) not in found, f"{match.group(1)} is listed twice"
        labels = tuple(re.findall(r"`(\w+)`", cells[2]))
        found[match.group(1)] = (cells[1], labels)
    return found


def test_metric_tables_list_exactly_the_declared_metrics() -> None:
    documented = _documented_metrics()
    declared = {m.query_name: (m.type, m.labels) for m in all_metrics()}
    missing = sorted(set(declared) - set(documented))
    extra = sorted(set(documented) - set(declared))
    wrong = [
        f"{name}: documented {documented[name]}, declared {declared[name]}"
        for name in sorted(set(declared) & set(documented))
        if documented[name] != declared[name]
    ]
    hint = "(`python -m tests.ops.catalogue` prints the rows from the code)"
    assert not missing, f"metrics the guide does not list: {missing} {hint}"
    assert not extra, f"metrics the guide lists and the code does not declare: {extra}"
    assert not wrong, "wrong type or labels:\n" + "\n".join(wrong) + f"\n{hint}"


def test_every_alert_has_a_runbook_section() -> None:
    section = docs.find_section("Alerts")
    assert section is not None, "no 'Alerts' section"
    headings = {s.title for s in docs.sections(section.path)}
    alerts = [r.name for r in rules() if r.kind == "alert"]
    missing = [alert for alert in alerts if alert not in headings]
    assert not missing, f"alerts without a section headed by their name: {missing}"
    for alert in alerts:
        assert f"`{alert}`" in section.body, f"{alert} is not in the alerts' table"


def test_every_dashboard_is_described() -> None:
    section = docs.find_section("Dashboards")
    assert section is not None, "no 'Dashboards' section"
    for stem, board in dashboards().items():
        assert f"{stem}.json" in section.body, f"{stem}.json is not described"
        assert docs.find_section(board["title"]) is not None, (
            f"no section headed {board['title']!r} (the dashboard's title)"
        )


def test_table_rows_and_anchors_are_read_as_github_does() -> None:
    assert docs.github_anchor("CardflowLLMErrorRate") == "cardflowllmerrorrate"
    assert docs.github_anchor("cardflow / Kafka") == "cardflow--kafka"
    assert docs.table_rows("| a | b \\| c |\n| --- | --- |\n| `x` | — |") == [
        ["a", "b \\| c"],
        ["`x`", "—"],
    ]

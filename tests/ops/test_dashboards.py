"""deploy/grafana/: provisioning files point where compose mounts things, every dashboard is
well formed (unique ids and titles, the provisioned datasource by uid) and every query in it
is valid PromQL (checked by promtool, as recording rules: no server needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ops.dashboards import (
    BUILTIN_VARIABLES,
    DASHBOARDS_DIR,
    dashboard_files,
    dashboard_queries,
    dashboards,
    load,
    panels,
    substitute,
    variables,
)
from tests.ops.prometheus_config import REPO, run_promtool

GRAFANA = REPO / "deploy" / "grafana"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
EXPECTED = {"cardflow-pipeline", "cardflow-kafka", "cardflow-gateway"}
PANEL_TYPES = {"row", "timeseries", "stat"}


def test_datasource_is_the_compose_prometheus_with_uid_prometheus() -> None:
    provisioning = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    [source] = provisioning["datasources"]
    assert source["uid"] == DATASOURCE["uid"]
    assert source["type"] == DATASOURCE["type"]
    assert source["url"] == "http://prometheus:9090"


def test_dashboard_provider_reads_where_compose_mounts_the_dashboards() -> None:
    provisioning = yaml.safe_load((GRAFANA / "provisioning/dashboards/cardflow.yml").read_text())
    [provider] = provisioning["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    compose = yaml.safe_load((REPO / "deploy/compose.yaml").read_text())
    volumes = compose["services"]["grafana"]["volumes"]
    assert "./grafana/dashboards:/var/lib/grafana/dashboards:ro" in volumes
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in volumes


def test_the_three_dashboards_exist_with_unique_uids() -> None:
    boards = dashboards()
    assert set(boards) == EXPECTED
    uids = [board["uid"] for board in boards.values()]
    assert sorted(uids) == sorted(EXPECTED), "a dashboard's uid is its file name"
    titles = [board["title"] for board in boards.values()]
    assert len(set(titles)) == len(titles)


def _problems(name: str, board: dict[str, Any]) -> list[str]:
    problems = []
    if board.get("schemaVersion", 0) < 39:
        problems.append(f"schemaVersion {board.get('schemaVersion')} < 39")
    if board.get("id") is not None:
        problems.append("id must be null (Grafana assigns it)")
    all_panels = list(panels(board))
    ids = [p.get("id") for p in all_panels]
    titles = [p.get("title") for p in all_panels]
    problems += [f"panel id {i} used twice" for i in {i for i in ids if ids.count(i) > 1}]
    repeated = {t for t in titles if titles.count(t) > 1}
    problems += [f"panel title {t!r} used twice" for t in repeated]
    for panel in all_panels:
        where = f"panel {panel.get('id')} {panel.get('title')!r}"
        if not isinstance(panel.get("id"), int) or not panel.get("title"):
            problems.append(f"{where}: no id or title")
        if panel.get("type") not in PANEL_TYPES:
            problems.append(f"{where}: type {panel.get('type')!r} not in {sorted(PANEL_TYPES)}")
        pos = panel.get("gridPos", {})
        if not (pos.get("w", 0) > 0 and pos.get("x", -1) >= 0 and pos["x"] + pos["w"] <= 24):
            problems.append(f"{where}: gridPos {pos} outside the 24 columns")
        if panel.get("type") == "row":
            continue
        if panel.get("datasource") != DATASOURCE:
            problems.append(f"{where}: datasource must be {DATASOURCE}")
        targets = panel.get("targets") or []
        if not targets:
            problems.append(f"{where}: no targets")
        ref_ids = [t.get("refId") for t in targets]
        if len(set(ref_ids)) != len(ref_ids):
            problems.append(f"{where}: refIds repeat")
        for target in targets:
            if not str(target.get("expr", "")).strip():
                problems.append(f"{where}: target {target.get('refId')} has no expr")
            if target.get("datasource", DATASOURCE) != DATASOURCE:
                problems.append(f"{where}: target {target.get('refId')} datasource")
    for variable in board.get("templating", {}).get("list", []):
        if variable.get("type") == "query" and variable.get("datasource") != DATASOURCE:
            problems.append(f"variable {variable['name']}: datasource must be {DATASOURCE}")
    return [f"{name}: {p}" for p in problems]


def test_dashboards_are_well_formed() -> None:
    problems = []
    for path in dashboard_files():
        problems += _problems(path.stem, load(path))
    assert not problems, "\n".join(problems)


def test_every_query_is_runnable_once_variables_are_substituted() -> None:
    queries = dashboard_queries(include_variables=True)
    assert len(queries) > 50, len(queries)
    left = [str(q) for q in queries if "$" in q.expr or "[[" in q.expr]
    assert not left, "variables left in:\n" + "\n".join(left)


def test_substitution_knows_grafana_syntaxes_and_refuses_unknown_variables() -> None:
    values = {"stage": ".*", **BUILTIN_VARIABLES}
    assert (
        substitute('rate(x{stage=~"$stage"}[$__rate_interval]) + [[stage]] ${stage:regex}', values)
        == 'rate(x{stage=~".*"}[5m]) + .* .*'
    )
    with pytest.raises(KeyError, match=r"\$__nope"):
        substitute("rate(x[$__nope])", values)
    pipeline = load(DASHBOARDS_DIR / "cardflow-pipeline.json")
    assert variables(pipeline)["stage"] == ".*"


def _check_as_recording_rules(exprs: list[str], path: Path) -> tuple[int, str]:
    rules = [{"record": f"dashboard:query_{i}", "expr": expr} for i, expr in enumerate(exprs)]
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = run_promtool("check", "rules", path)
    return result.returncode, result.stdout


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each query as a recording rule's expression: a PromQL syntax check
    without a server. One file per query, so a failure names its panel."""
    queries = dashboard_queries(include_variables=True)
    code, output = _check_as_recording_rules([q.expr for q in queries], tmp_path / "all.yml")
    if code == 0:
        assert f"SUCCESS: {len(queries)} rules found" in output, output
        return
    bad = []
    for i, query in enumerate(queries):
        one, out = _check_as_recording_rules([query.expr], tmp_path / f"query_{i}.yml")
        if one != 0:
            bad.append(f"{query}\n    {out.strip()}")
    assert bad, output
    raise AssertionError("invalid PromQL in dashboards:\n" + "\n".join(bad))


def test_the_promql_check_catches_invalid_queries(tmp_path: Path) -> None:
    code, output = _check_as_recording_rules(
        ["sum by (stage) (rate(cardflow_items_total[5m])"], tmp_path / "bad.yml"
    )
    assert code != 0, output
    assert "dashboard:query_0" in output or "parse error" in output, output

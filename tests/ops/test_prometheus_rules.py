"""deploy/prometheus/: the configuration and the rules pass promtool's checks, the rules'
unit tests pass and cover every alert firing and not firing, every alert has a runbook in the
operations guide, and the scrape targets are the ones compose runs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ops import docs, prometheus_config
from tests.ops.prometheus_config import (
    JOBS,
    PROMETHEUS_CONFIG,
    REPO,
    assert_promtool_ok,
    render_scrape_config,
    rule_files,
    rule_test_files,
    rules,
)

SEVERITIES = {"critical", "warning", "info"}
RUNBOOK_DOC = "docs/operations.md"


def test_there_are_rules_and_rule_tests() -> None:
    assert rule_files(), "no rule files in deploy/prometheus/rules/"
    assert rule_test_files(), "no promtool tests in deploy/prometheus/tests/"
    assert [r for r in rules() if r.kind == "alert"]


def test_promtool_check_config() -> None:
    # Checks the rule files the configuration names too (rules/*.yml, beside it).
    output = assert_promtool_ok("check", "config", PROMETHEUS_CONFIG)
    assert f"SUCCESS: {len(rule_files())} rule files found" in output, output


@pytest.mark.parametrize("path", rule_files(), ids=lambda p: p.name)
def test_promtool_check_rules(path: Path) -> None:
    assert_promtool_ok("check", "rules", path)


@pytest.mark.parametrize("path", rule_test_files(), ids=lambda p: p.name)
def test_promtool_test_rules(path: Path) -> None:
    assert_promtool_ok("test", "rules", path.name, cwd=path.parent)


def _alert_tests() -> dict[str, list[list[Any]]]:
    """Alert name -> the exp_alerts of every alert_rule_test naming it."""
    found: dict[str, list[list[Any]]] = {}
    for path in rule_test_files():
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                found.setdefault(check["alertname"], []).append(check.get("exp_alerts") or [])
    return found


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    tested = _alert_tests()
    alerts = {r.name for r in rules() if r.kind == "alert"}
    problems = []
    for alert in sorted(alerts):
        expectations = tested.get(alert, [])
        if not any(expectations):
            problems.append(f"{alert}: no test where it fires")
        if not any(not e for e in expectations):
            problems.append(f"{alert}: no test where it does not fire")
    problems += [f"{name}: tested but no such alert" for name in sorted(set(tested) - alerts)]
    assert not problems, "\n".join(problems)


def test_alerts_have_severity_summary_description_and_runbook() -> None:
    problems = []
    names = [r.name for r in rules() if r.kind == "alert"]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        problems.append(f"alert names used twice: {sorted(duplicates)}")
    for rule in rules():
        if rule.kind != "alert":
            continue
        if rule.labels.get("severity") not in SEVERITIES:
            problems.append(f"{rule.name}: severity must be one of {sorted(SEVERITIES)}")
        for key in ("summary", "description", "runbook", "runbook_url"):
            if not str(rule.annotations.get(key, "")).strip():
                problems.append(f"{rule.name}: no {key} annotation")
        expected = f"{RUNBOOK_DOC}#{docs.github_anchor(rule.name)}"
        if rule.annotations.get("runbook_url") != expected:
            problems.append(f"{rule.name}: runbook_url should be {expected}")
    assert not problems, "\n".join(problems)


def test_every_runbook_url_has_its_section_in_the_guide() -> None:
    """The anchor exists in the operations guide, or in the monitoring part written apart
    until it is merged into it."""
    anchors = docs.anchors()
    known = set().union(*anchors.values())
    missing = []
    for rule in rules():
        url = str(rule.annotations.get("runbook_url", ""))
        path, _, anchor = url.partition("#")
        if rule.kind == "alert" and (path != RUNBOOK_DOC or anchor not in known):
            missing.append(f"{rule.name}: {url}")
    assert not missing, f"runbook anchors not found in {[p.name for p in docs.DOCS]}:\n" + (
        "\n".join(missing)
    )


def _config() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    return config


def _scrape_ports() -> dict[str, set[int]]:
    """job -> the ports its targets are scraped on."""
    ports: dict[str, set[int]] = {}
    for job in _config()["scrape_configs"]:
        found = ports.setdefault(job["job_name"], set())
        for sd in job.get("dns_sd_configs", []):
            found.add(int(sd["port"]))
        for static in job.get("static_configs", []):
            found.update(int(t.rpartition(":")[2]) for t in static["targets"])
    return ports


def test_every_service_is_a_scrape_job() -> None:
    ports = _scrape_ports()
    assert set(JOBS) <= set(ports), f"jobs missing: {sorted(set(JOBS) - set(ports))}"
    assert all(len(ports[job]) == 1 for job in JOBS), ports
    assert _config()["rule_files"] == ["rules/*.yml"]


def test_scrape_ports_are_the_ones_compose_opens() -> None:
    """deploy/compose.yaml's services listen where prometheus.yml scrapes them, and it
    mounts the rules beside the configuration (rule_files is relative to it)."""
    compose_file = REPO / "deploy" / "compose.yaml"
    assert compose_file.is_file(), "deploy/compose.yaml is missing"
    services = yaml.safe_load(compose_file.read_text())["services"]
    ports = _scrape_ports()
    for job in JOBS:
        environment = services[job]["environment"]
        setting = "CARDFLOW_GATEWAY_PORT" if job == "gateway" else "CARDFLOW_METRICS_PORT"
        assert {int(environment[setting])} == ports[job], f"{job}: {setting} vs prometheus.yml"
    volumes = services["prometheus"]["volumes"]
    assert "./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in volumes
    assert "./prometheus/rules:/etc/prometheus/rules:ro" in volumes


def test_the_commented_kubernetes_scrape_config_is_valid(tmp_path: Path) -> None:
    """The pod-discovery example at the end of prometheus.yml, uncommented, is accepted.
    Debian's promtool is built without Kubernetes discovery, so promtool checks the example
    with its discovery swapped for a static target: the relabelling is what is checked."""
    text = PROMETHEUS_CONFIG.read_text()
    tail = text.split("# Kubernetes, with plain pod discovery")[1]
    example = yaml.safe_load("\n".join(re.findall(r"^#(  .*)$", tail, re.M)))
    assert isinstance(example, list), example
    [job] = example
    assert job["job_name"] == "cardflow"
    assert job["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"names": ["cardflow"]}}]
    relabel = job["relabel_configs"]
    component = "__meta_kubernetes_pod_label_app_kubernetes_io_component"
    assert {"source_labels": [component], "target_label": "job"} in relabel, (
        "the job label must be the service: the pod's component label"
    )
    del job["kubernetes_sd_configs"]
    job["static_configs"] = [{"targets": ["10.0.0.1:8000"]}]
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump({"scrape_configs": [job]}))
    assert_promtool_ok("check", "config", config)


def test_rendered_local_config_is_valid(tmp_path: Path) -> None:
    targets = {
        "gateway": "127.0.0.1:18000",
        "analysis": "127.0.0.1:19101",
        "epics": "127.0.0.1:19102",
        "stories": "127.0.0.1:19103",
        "subtasks": "127.0.0.1:19104",
    }
    text = render_scrape_config(targets, scrape_interval="2s")
    config = yaml.safe_load(text)
    assert {j["job_name"]: j["static_configs"][0]["targets"] for j in config["scrape_configs"]} == {
        job: [target] for job, target in targets.items()
    }
    assert config["global"] == {"scrape_interval": "2s", "evaluation_interval": "2s"}
    path = tmp_path / "prometheus.yml"
    path.write_text(text)
    output = assert_promtool_ok("check", "config", path)
    assert f"{len(rule_files())} rule files found" in output, output


@pytest.mark.parametrize("targets", [{}, {"gateway": "127.0.0.1"}, {"": "127.0.0.1:80"}])
def test_render_refuses_what_is_no_target(targets: dict[str, str]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        render_scrape_config(targets)


def test_without_promtool_the_tests_fail_saying_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(prometheus_config, "find_tool", lambda name: None)
    with pytest.raises(pytest.fail.Exception, match=r"make prometheus"):
        prometheus_config.promtool()

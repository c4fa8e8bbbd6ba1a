"""deploy/prometheus/: where its files are, the rules in it, promtool, and a scrape
configuration for services running anywhere (:func:`render_scrape_config`).

Shared by the tests of this directory and the end-to-end test that runs Prometheus against the
local stack (services on 127.0.0.1, on ports from its environment).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULES_DIR = PROMETHEUS_DIR / "rules"
RULE_TESTS_DIR = PROMETHEUS_DIR / "tests"

JOBS = ("gateway", "analysis", "epics", "stories", "subtasks")
"""The scrape jobs, one per service: the job label the rules and dashboards select on."""

MAKE_TARGET_HINT = (
    "promtool is missing: run `make prometheus` (it installs Debian's `prometheus` package, "
    "which provides /usr/bin/promtool and /usr/bin/prometheus)"
)


def rule_files() -> list[Path]:
    return sorted(RULES_DIR.glob("*.yml"))


def rule_test_files() -> list[Path]:
    return sorted(RULE_TESTS_DIR.glob("*.yml"))


@dataclass(frozen=True)
class Rule:
    file: str
    group: str
    name: str
    """The alert's name, or the recorded metric's."""
    kind: str
    """``alert`` or ``record``."""
    expr: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]


def rules() -> list[Rule]:
    """Every rule of every file in deploy/prometheus/rules/."""
    found: list[Rule] = []
    for path in rule_files():
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                kind = "alert" if "alert" in rule else "record"
                found.append(
                    Rule(
                        file=path.name,
                        group=group["name"],
                        name=rule[kind],
                        kind=kind,
                        expr=rule["expr"],
                        labels=rule.get("labels", {}),
                        annotations=rule.get("annotations", {}),
                    )
                )
    return found


def render_scrape_config(
    targets: dict[str, str],
    *,
    scrape_interval: str = "15s",
    evaluation_interval: str | None = None,
    rules_dir: Path = RULES_DIR,
) -> str:
    """A Prometheus configuration (YAML) scraping ``targets`` (job -> ``host:port``, e.g.
    ``{"gateway": "127.0.0.1:8000", "analysis": "127.0.0.1:9101"}``) on ``/metrics`` with
    static targets, with cardflow's rules (``rules_dir``, an absolute path, so the file may be
    written anywhere). Pure: writes nothing."""
    if not targets:
        raise ValueError("no targets to scrape")
    scrape_configs: list[dict[str, Any]] = []
    for job, target in targets.items():
        host, _, port = target.rpartition(":")
        if not job or not host or not port.isdigit():
            raise ValueError(f"a target is host:port, got {job!r}: {target!r}")
        scrape_configs.append(
            {
                "job_name": job,
                "metrics_path": "/metrics",
                "static_configs": [{"targets": [target]}],
            }
        )
    config = {
        "global": {
            "scrape_interval": scrape_interval,
            "evaluation_interval": evaluation_interval or scrape_interval,
        },
        "rule_files": [str(Path(rules_dir).resolve() / "*.yml")],
        "scrape_configs": scrape_configs,
    }
    return yaml.safe_dump(config, sort_keys=False)


def find_tool(name: str) -> str | None:
    """``promtool`` or ``prometheus``: on PATH, or where Debian's package puts it."""
    found = shutil.which(name)
    if found:
        return found
    debian = Path("/usr/bin") / name
    return str(debian) if debian.is_file() else None


def promtool() -> str:
    """promtool's path; fails the calling test (it never skips) when it is missing."""
    path = find_tool("promtool")
    if path is None:
        pytest.fail(MAKE_TARGET_HINT, pytrace=False)
    return path


def run_promtool(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """promtool with ``args``; its output (both streams) in ``stdout``."""
    return subprocess.run(
        [promtool(), *map(str, args)],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
        check=False,
    )


def assert_promtool_ok(*args: str | Path, cwd: Path | None = None) -> str:
    """Runs promtool and fails the test with its output unless it exits 0."""
    result = run_promtool(*args, cwd=cwd)
    command = " ".join(["promtool", *map(str, args)])
    assert result.returncode == 0, f"`{command}` failed:\n{result.stdout}"
    return result.stdout

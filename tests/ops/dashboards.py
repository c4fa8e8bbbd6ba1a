"""deploy/grafana/dashboards/: the dashboards, their panels and every query in them, with
Grafana's variables substituted so that Prometheus (or promtool) can run them as they are.

:func:`dashboard_queries` is shared by the static tests here and the end-to-end test that
asks a Prometheus scraping a live stack for each query's data.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS_DIR = REPO / "deploy" / "grafana" / "dashboards"

BUILTIN_VARIABLES = {
    "__rate_interval": "5m",
    "__interval": "1m",
    "__range": "1h",
    "__range_s": "3600",
    "__interval_ms": "60000",
}
"""Grafana's own variables, with the value a query is checked (or run) with."""

_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)")
_LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*\w+\s*\)\s*$", re.S)


@dataclass(frozen=True)
class Query:
    dashboard: str
    """The file's stem, e.g. ``cardflow-pipeline``."""
    panel: str
    """The panel's title (``variable $name`` for a template variable's query)."""
    ref_id: str
    expr: str
    """With every variable substituted: runnable PromQL."""
    raw_expr: str
    """As written in the dashboard."""

    def __str__(self) -> str:
        return f"{self.dashboard} / {self.panel} / {self.ref_id}: {self.expr}"


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARDS_DIR.glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def dashboards() -> dict[str, dict[str, Any]]:
    """File stem -> parsed dashboard."""
    return {path.stem: load(path) for path in dashboard_files()}


def panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows included, and the panels inside collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def variables(dashboard: Mapping[str, Any]) -> dict[str, str]:
    """Template variable -> the value a query is run with: "All" (its allValue, ``.*`` by
    default) when it has one, else its current value; plus Grafana's own variables."""
    values = dict(BUILTIN_VARIABLES)
    for variable in dashboard.get("templating", {}).get("list", []):
        name = variable["name"]
        if variable.get("includeAll"):
            values[name] = variable.get("allValue") or ".*"
        else:
            current = variable.get("current", {}).get("value")
            values[name] = current[0] if isinstance(current, list) else str(current or "")
    return values


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """``expr`` with ``$name``, ``${name}``, ``${name:format}`` and ``[[name]]`` replaced;
    an unknown variable raises KeyError."""

    def value(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        if name not in values:
            raise KeyError(f"unknown variable ${name} in: {expr}")
        return values[name]

    return _VARIABLE.sub(value, expr)


def _variable_expr(variable: Mapping[str, Any]) -> str | None:
    """The PromQL inside a query variable's definition (``label_values(expr, label)``)."""
    query = variable.get("query")
    text = query.get("query") if isinstance(query, Mapping) else query
    if not text:
        return None
    inner = _LABEL_VALUES.match(text)
    return inner.group(1) if inner else str(text)


def dashboard_queries(*, include_variables: bool = False) -> list[Query]:
    """Every (dashboard, panel title, query) of every dashboard, runnable as is; with
    ``include_variables`` also the PromQL of the template variables' queries."""
    found: list[Query] = []
    for stem, dashboard in dashboards().items():
        values = variables(dashboard)
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                raw = target.get("expr")
                if raw:
                    found.append(
                        Query(stem, panel["title"], target["refId"], substitute(raw, values), raw)
                    )
        if include_variables:
            for variable in dashboard.get("templating", {}).get("list", []):
                raw = _variable_expr(variable) if variable.get("type") == "query" else None
                if raw:
                    panel = f"variable ${variable['name']}"
                    found.append(Query(stem, panel, "query", substitute(raw, values), raw))
    return found

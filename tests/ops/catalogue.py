"""The metrics cardflow's processes export, as the code declares them: cardflow's catalogue
(``services.runtime.metrics``) and FastStream's Prometheus middleware. Each with its type,
labels, help and the sample names it is exposed under (a Counter ``cardflow_items`` is
scraped as ``cardflow_items_total`` and ``cardflow_items_created``, a Histogram as
``_bucket``, ``_sum``, ``_count`` and ``_created``).

``python -m tests.ops.catalogue`` prints the tables of docs/operations.md
"Metrics" section, from the code, with an "exported by" column left to fill in by hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

# Sample names a metric family of each type is exposed under (text format, prometheus_client
# defaults: _created series included).
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "enum": ("",),
}

TARGET_LABELS = frozenset({"job", "instance"})
"""Labels Prometheus adds to every scraped series."""


@dataclass(frozen=True)
class Metric:
    name: str
    """As declared (a counter without ``_total``)."""
    type: str
    labels: tuple[str, ...]
    help: str
    source: str
    """``cardflow`` or ``faststream``."""

    @property
    def query_name(self) -> str:
        """The name a query uses for it: ``_total`` for a counter; a histogram's base name
        (queried as ``_bucket``, ``_sum``, ``_count``)."""
        return self.name + "_total" if self.type == "counter" else self.name

    @property
    def samples(self) -> tuple[str, ...]:
        return tuple(self.name + suffix for suffix in _SUFFIXES[self.type])

    def sample_labels(self, sample: str) -> frozenset[str]:
        """Labels a series named ``sample`` of this metric may have once scraped."""
        extra = {"le"} if sample.endswith("_bucket") and self.type == "histogram" else set()
        return frozenset(self.labels) | TARGET_LABELS | extra


def _describe(collector: MetricWrapperBase, source: str) -> Metric:
    return Metric(
        name=collector._name,
        type=collector._type,
        labels=tuple(collector._labelnames),
        help=" ".join(collector._documentation.split()),
        source=source,
    )


@cache
def cardflow_metrics() -> tuple[Metric, ...]:
    """The catalogue: every metric ``services.runtime.metrics`` declares, in its order."""
    from services.runtime import metrics

    return tuple(
        _describe(value, "cardflow")
        for value in vars(metrics).values()
        if isinstance(value, MetricWrapperBase)
    )


@cache
def faststream_metrics() -> tuple[Metric, ...]:
    """The metrics FastStream's Kafka Prometheus middleware creates (it creates them all at
    construction, in the registry it is given)."""
    from faststream.kafka.prometheus import KafkaPrometheusMiddleware

    registry = CollectorRegistry()
    KafkaPrometheusMiddleware(registry=registry)
    collectors = {id(c): c for c in registry._collector_to_names}.values()
    return tuple(_describe(c, "faststream") for c in collectors if isinstance(c, MetricWrapperBase))


def all_metrics() -> tuple[Metric, ...]:
    return cardflow_metrics() + faststream_metrics()


@cache
def samples() -> dict[str, Metric]:
    """Every sample name the services can expose (cardflow's and FastStream's) -> its
    metric."""
    return {sample: metric for metric in all_metrics() for sample in metric.samples}


METRIC_NAME = re.compile(r"\b(?:cardflow|faststream)_[A-Za-z0-9_]+")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')


def strip_strings(expr: str) -> str:
    """``expr`` with its string literals emptied (label values, regexes)."""
    return _STRING.sub('""', expr)


def metric_names(expr: str) -> set[str]:
    """cardflow_* and faststream_* names a PromQL expression refers to (not inside string
    literals; recording rules named ``cardflow:...`` are not matched)."""
    return set(METRIC_NAME.findall(strip_strings(expr)))


_SELECTOR = re.compile(r"\b((?:cardflow|faststream)_[A-Za-z0-9_]+)\s*\{")
_MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"\s*,?')
_AGGREGATION = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)\s*\(")


def selector_labels(expr: str) -> list[tuple[str, str]]:
    """(metric, label) of every label matcher in a selector ``metric{label="..."}``."""
    found = []
    for match in _SELECTOR.finditer(expr):
        rest = expr[match.end() :]
        while True:
            matcher = _MATCHER.match(rest)
            if matcher is None:
                break
            found.append((match.group(1), matcher.group(1)))
            rest = rest[matcher.end() :]
        if not rest.lstrip().startswith("}"):
            raise ValueError(f"cannot read the selector of {match.group(1)} in: {expr}")
    return found


def _balanced(text: str, start: int) -> str:
    """The text inside the parenthesis opening at ``text[start]``."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i]
    raise ValueError(f"unbalanced parentheses in: {text}")


def grouping_labels(expr: str) -> list[tuple[tuple[str, ...], str]]:
    """(labels, aggregated expression) of every ``by (labels) (expression)`` (the prefix form
    the dashboards and rules use)."""
    stripped = strip_strings(expr)
    found = []
    for match in _AGGREGATION.finditer(stripped):
        labels = tuple(label.strip() for label in match.group(1).split(",") if label.strip())
        found.append((labels, _balanced(stripped, match.end() - 1)))
    return found


def label_problems(expr: str) -> list[str]:
    """Labels ``expr`` selects or groups by that the metrics it reads do not have (besides
    job, instance, and le on buckets). Metrics other than cardflow's and FastStream's are not
    checked."""
    known = samples()
    problems = []
    for metric, label in selector_labels(expr):
        if metric in known and label not in known[metric].sample_labels(metric):
            problems.append(f"{metric} has no label {label!r}")
    for labels, inner in grouping_labels(expr):
        names = [name for name in metric_names(inner) if name in known]
        if not names:
            continue
        available = frozenset().union(*(known[name].sample_labels(name) for name in names))
        for label in labels:
            if label not in available:
                problems.append(f"by ({label}) over {sorted(names)}: no such label")
    return problems


def _row(metric: Metric) -> str:
    labels = ", ".join(f"`{label}`" for label in metric.labels) or "—"
    help_text = metric.help.replace("|", "\\|")
    return f"| `{metric.query_name}` | {metric.type} | {labels} | | {help_text} |"


def markdown_table(metrics: tuple[Metric, ...]) -> str:
    header = "| metric | type | labels | exported by | meaning |\n| --- | --- | --- | --- | --- |"
    return "\n".join([header, *(_row(m) for m in metrics)])


if __name__ == "__main__":
    print(markdown_table(cardflow_metrics()))
    print()
    print(markdown_table(faststream_metrics()))

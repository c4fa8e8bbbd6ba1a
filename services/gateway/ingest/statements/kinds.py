"""A requirement's kind (functional, non-functional, constraint, success criterion): by the
author's id, else the section it sits in, else its words. ``in`` tests only: linear."""

from __future__ import annotations

from contracts.backlog import RequirementKind

_NFR_WORDS = (
    "performance",
    "latency",
    "response time",
    "throughput",
    "within ",
    " ms",
    "millisecond",
    "seconds",
    "per second",
    "availability",
    "uptime",
    "99.",
    "secure",
    "security",
    "encrypt",
    "authentication",
    "gdpr",
    "privacy",
    "accessib",
    "wcag",
    "screen reader",
    "usability",
    "scalab",
    "concurrent users",
    "reliab",
    "recover",
    "backup",
    "audit log",
    "p95",
    "p99",
    "load time",
    "localiz",
    "internationaliz",
    "maintainab",
    "observab",
)
_CONSTRAINT_WORDS = (
    "must use ",
    "must run on ",
    "must be built with",
    "must be written in",
    "is limited to",
    "are limited to",
    "must be compatible with",
    "must be deployed",
    "must support only",
    "must be hosted",
    "must integrate with",
    "shall use ",
    "shall run on ",
    "must not exceed",
    "budget",
    "licen",
)
_SUCCESS_SECTIONS = (
    "success criteria",
    "success metric",
    "metrics",
    "kpi",
    "measurable outcome",
    "outcomes",
    "goals and metrics",
)
_NFR_SECTIONS = (
    "non-functional",
    "nonfunctional",
    "non functional",
    "quality attribute",
    "performance",
    "security",
    "accessibility",
    "reliability",
    "usability",
)
_CONSTRAINT_SECTIONS = ("constraint", "technical requirement", "technology", "assumptions")


def kind_of(text: str, *, author_id: str | None = None, section: str = "") -> RequirementKind:
    """The requirement's kind: by the author's id (``SC-`` success criterion; ``NFR``, ``NF``,
    ``PERF``, ``SEC`` non-functional; ``CON``, ``TC`` constraint), else by the section it
    sits in (Success Criteria/Metrics, Non-functional, Constraints), else by its words
    (performance, security, availability, accessibility, usability → non_functional; "must
    use", "must run on", "is limited to" → constraint); functional otherwise."""
    prefix = (author_id or "").upper().split("-", 1)[0].rstrip("0123456789_ ")
    if prefix in ("SC", "KPI", "M", "SM"):
        return RequirementKind.SUCCESS_CRITERION
    if prefix in ("NFR", "NF", "PERF", "SEC", "NR", "QR", "Q"):
        return RequirementKind.NON_FUNCTIONAL
    if prefix in ("CON", "TC", "C", "CR"):
        return RequirementKind.CONSTRAINT
    heading = section.lower()
    if any(word in heading for word in _SUCCESS_SECTIONS):
        return RequirementKind.SUCCESS_CRITERION
    if any(word in heading for word in _NFR_SECTIONS):
        return RequirementKind.NON_FUNCTIONAL
    if any(word in heading for word in _CONSTRAINT_SECTIONS):
        return RequirementKind.CONSTRAINT
    lowered = f" {text.lower()} "
    if any(word in lowered for word in _CONSTRAINT_WORDS):
        return RequirementKind.CONSTRAINT
    if any(word in lowered for word in _NFR_WORDS):
        return RequirementKind.NON_FUNCTIONAL
    return RequirementKind.FUNCTIONAL

"""What a section is for, judged by its heading and the headings above it: requirements,
success criteria, a user story, a glossary, questions, context (introduction, overview,
background) or something else that states no requirement (roadmap, architecture, risks,
out of scope). Word lists over the lower-cased heading: ``in`` tests only, linear."""

from __future__ import annotations

import re
from enum import StrEnum


class Role(StrEnum):
    REQUIREMENTS = "requirements"
    SUCCESS = "success"
    STORY = "story"
    GLOSSARY = "glossary"
    QUESTIONS = "questions"
    CONTEXT = "context"
    SKIP = "skip"
    NEUTRAL = "neutral"


# Checked in this order, so "Out of scope features" is out of scope before it is features and
# "User Scenarios & Testing" holds stories before it is testing.
_HARD_SKIP = (
    "out of scope",
    "out-of-scope",
    "not in scope",
    "non-goal",
    "non goal",
    "nongoal",
    "future",
    "stretch",
    "nice to have",
    "nice-to-have",
    "won't have",
    "appendix",
    "roadmap",
    "risk",
    "post-mvp",
    "post mvp",
    "growth feature",
    "changelog",
    "change log",
    "revision history",
    "document control",
    "approval",
    "sign-off",
    "table of contents",
    "quality metrics",
    "quality gate",
    "testing strategy",
    "test strategy",
    "test plan",
    "strategies",
    "post-launch",
    "post launch",
)
# Everything under these is not for now, whatever an inner heading says ("Future Roadmap >
# Advanced Features"). Risks are left out: authors file an MVP list under "Risks" too.
_ANCESTOR_SKIP = (
    "out of scope",
    "out-of-scope",
    "not in scope",
    "non-goal",
    "non goal",
    "future",
    "roadmap",
    "post-mvp",
    "post mvp",
    "won't have",
    "appendix",
    "changelog",
    "change log",
    "revision history",
    "post-launch",
    "post launch",
)
_QUALITY_ATTRIBUTE = re.compile(r"[a-z]{2,30}[ai]bility ")
_NOT_NOW = (
    "out of scope",
    "out-of-scope",
    "not in scope",
    "non-goal",
    "non goal",
    "future",
    "stretch",
    "post-mvp",
    "post mvp",
    "nice to have",
    "nice-to-have",
    "won't have",
    "later",
    "v2",
)
# A summary restates requirements written elsewhere in the document.
_SUMMARY = (
    "requirements summary",
    "summary of requirements",
    "requirements overview",
    "feature summary",
    "features summary",
    "capability summary",
    "capabilities summary",
)
_GLOSSARY = (
    "glossary",
    "definitions",
    "definition of terms",
    "terminology",
    "key entities",
    "acronym",
    "abbreviation",
    "terms",
)
_QUESTIONS = (
    "open question",
    "edge case",
    "questions",
    "unknowns",
    "open issues",
    "clarification",
    "unresolved",
)
_SUCCESS = (
    "success criteri",
    "success metric",
    "measurable outcome",
    "kpi",
    "metrics",
    "success measure",
    "acceptance metric",
    "outcomes",
)
_REQUIREMENTS = (
    "requirement",
    "feature",
    "capabilit",
    "user stor",
    "user scenario",
    "functional",
    "must have",
    "must-have",
    "should have",
    "could have",
    "nfr",
    "constraint",
    "performance",
    "security",
    "accessibility",
    "reliability",
    "scalability",
    "usability",
    "availability",
    "privacy",
    "compliance",
    "mvp",
    "scope",
    "ui/ux",
    "behaviour",
    "behavior",
    "use case",
    "specification of",
    "acceptance criteria",
    "benchmarks",
    "sla",
)
_CONTEXT = (
    "introduction",
    "overview",
    "summary",
    "background",
    "problem",
    "vision",
    "mission",
    "purpose",
    "about",
    "context",
    "motivation",
    "executive",
    "why ",
    "value proposition",
    "definition of",
    "product definition",
)
_SOFT_SKIP = (
    "persona",
    "stakeholder",
    "architecture",
    "design",
    "technical spec",
    "technology",
    "stack",
    "timeline",
    "phase",
    "milestone",
    "sprint",
    "implementation",
    "task",
    "reminder",
    "instruction",
    "testing",
    "quality assurance",
    "mitigation",
    "assumption",
    "dependenc",
    "budget",
    "cost",
    "launch",
    "marketing",
    "deployment",
    "operations",
    "journey",
    "workflow",
    "flow",
    "api",
    "endpoint",
    "schema",
    "data model",
    "database",
    "migration",
    "monitoring",
    "innovation",
    "classification",
    "scoping",
    "strategy",
    "current state",
    "what we know",
    "verification",
    "notes",
    "conclusion",
    "next steps",
    "competit",
    "market",
    "research",
    "interview",
    "insight",
    "components",
    "environment",
    "setup",
    "installation",
    "example",
    "references",
    "glossary",
)
# A heading that only names a part of the section above it: read with that section.
_PART_NAMES = frozenset(
    (
        "acceptance criteria",
        "acceptance criterion",
        "acceptance scenarios",
        "scenarios",
        "criteria",
        "user story",
        "user stories",
        "details",
        "notes",
        "description",
        "edge cases",
        "examples",
        "rationale",
        "independent test",
        "test",
        "tests",
        "definition of done",
        "story",
        "requirements",
    )
)
_STORY_HEADING = re.compile(r"(?:user[ \t]{0,3})?story[ \t]{0,3}#?[0-9]{1,4}\b", re.IGNORECASE)


def is_part_name(name: str) -> bool:
    return name.lower().strip(" :") in _PART_NAMES


_NOT_WORD = re.compile(r"[^a-z0-9/+'-]+")
# Checked in this order: the first list with a word in the heading decides.
_ROLE_WORDS: tuple[tuple[tuple[str, ...], Role], ...] = (
    (_SUMMARY, Role.CONTEXT),
    (_HARD_SKIP, Role.SKIP),
    (_GLOSSARY, Role.GLOSSARY),
    (_QUESTIONS, Role.QUESTIONS),
    (_SUCCESS, Role.SUCCESS),
    (_REQUIREMENTS, Role.REQUIREMENTS),
    (_CONTEXT, Role.CONTEXT),
    (_SOFT_SKIP, Role.SKIP),
)


def _padded(name: str) -> str:
    # Words are matched at their start ("api" is not in "capital", "flow" not in "overflow").
    return " " + _NOT_WORD.sub(" ", name.lower()) + " "


def _has(padded: str, words: tuple[str, ...]) -> bool:
    return any(f" {word}" in padded for word in words)


def _role_of_name(name: str) -> Role | None:
    if _STORY_HEADING.match(name.strip()):
        return Role.STORY
    padded = _padded(name)
    for words, role in _ROLE_WORDS:
        if _has(padded, words):
            return role
    if _QUALITY_ATTRIBUTE.search(padded):
        return Role.REQUIREMENTS  # "Deployability", "Maintainability": qualities asked for
    return None


def is_quality_heading(name: str) -> bool:
    """ "Packaging & Deployability", "Maintainability": a heading naming a quality."""
    return bool(_QUALITY_ATTRIBUTE.search(_padded(name)))


def is_quality_list_heading(name: str) -> bool:
    """A heading naming a quality the product must have ("Security & Compliance",
    "Performance Goals", "Accessibility"): its bullets are asks."""
    return is_quality_heading(name) or _says(name, ("security", "performance"))


_FINDING_OUT = ("verification", "verify", "assessment", "investigation", "spike", "discovery")


_ASIDE = re.compile(r"\([^()]{0,120}\)")


def is_finding_out(names: list[str]) -> bool:
    """A heading naming work to find something out ("Phase 0: Current State Verification",
    "Spike"), not to build it; an aside does not name it ("Phase 1: Fix Core Tools (AFTER
    VERIFICATION)")."""
    return any(_says(_ASIDE.sub(" ", name), _FINDING_OUT) for name in names)


def is_not_now(names: list[str]) -> bool:
    """Any of the headings puts what is under it out of scope or later."""
    return any(_says(name, _NOT_NOW) for name in names)


def role_of(names: list[str]) -> tuple[Role, str]:
    """The role of a section from its heading names, innermost first (the document's title
    left out): the first name that says one, with that name; NEUTRAL when none does. Under
    a heading that names the requirements list itself ("Functional Requirements"), an inner
    heading's softer words ("Phase 1 - Setup wizard", "API") do not take its requirements
    away; only out-of-scope, future and risk headings do."""
    if any(_says(name, _ANCESTOR_SKIP) for name in names[1:]):
        return Role.SKIP, next(n for n in names[1:] if _says(n, _ANCESTOR_SKIP))
    inside_list = any(is_strong_requirements_heading(name) for name in names[1:])
    for name in names:
        role = _role_of_name(name)
        if role is Role.SKIP and inside_list and not _hard_skip(name):
            continue
        if role is Role.STORY and name is not names[0]:
            return Role.REQUIREMENTS, name
        if role is not None:
            return role, name
    return Role.NEUTRAL, ""


def _says(name: str, words: tuple[str, ...]) -> bool:
    return _has(_padded(name), words)


def _hard_skip(name: str) -> bool:
    return _says(name, _HARD_SKIP)


_STRONG = (
    "functional requirement",
    "non-functional",
    "nonfunctional",
    "non functional",
    "security requirement",
    "performance requirement",
    "reliability requirement",
    "usability requirement",
    "accessibility requirement",
    "scalability requirement",
    "availability requirement",
    "nfr",
)


def is_strong_requirements_heading(name: str) -> bool:
    """A heading that names the requirements list itself ("Functional Requirements",
    "Non-Functional Requirements", "Security Requirements", a bare "Requirements")."""
    lowered = name.lower().strip(" :")
    return lowered in ("requirements", "requirement") or any(w in lowered for w in _STRONG)

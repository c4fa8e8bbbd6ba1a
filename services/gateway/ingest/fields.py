"""Which CSV column or JSON key holds what: a tracker record's title, body, id, type, priority,
status, acceptance criteria, group (epic, parent, list, milestone), labels and estimate.

Names are compared after lower-casing and dropping everything but letters and digits, so
"Issue key", "issue_key" and "IssueKey" are one name; Jira's "Custom field (Acceptance
Criteria)" is read as "Acceptance Criteria". The first listed name present wins.
"""

from __future__ import annotations

from enum import StrEnum


class Field(StrEnum):
    TITLE = "title"
    BODY = "body"
    ID = "id"
    NUMERIC_ID = "numeric_id"
    TYPE = "type"
    PRIORITY = "priority"
    STATUS = "status"
    CRITERIA = "criteria"
    EPIC_LINK = "epic_link"
    PARENT = "parent"
    PARENT_NAME = "parent_name"
    GROUP_NAME = "group_name"
    EPIC_NAME = "epic_name"
    LABELS = "labels"
    POINTS = "points"


NAMES: dict[Field, tuple[str, ...]] = {
    Field.TITLE: ("title", "summary", "name", "subject", "heading", "cardname", "cardtitle"),
    Field.BODY: (
        "description",
        "body",
        "details",
        "detail",
        "text",
        "content",
        "desc",
        "carddescription",
        "notes",
        "userstory",
        "story",
        "requirement",
    ),
    Field.ID: ("issuekey", "key", "externalid", "id", "cardid", "ref", "number", "storyid"),
    Field.NUMERIC_ID: ("issueid",),
    Field.TYPE: ("issuetype", "type", "kind", "worktype", "workitemtype"),
    Field.PRIORITY: ("priority", "moscow", "moscowpriority"),
    Field.STATUS: ("status", "state"),
    Field.CRITERIA: ("acceptancecriteria", "acceptance", "criteria", "ac", "definitionofdone"),
    Field.EPIC_LINK: ("epiclink", "epic", "epickey"),
    Field.PARENT: ("parent", "parentid", "parentkey", "parentlink"),
    Field.PARENT_NAME: ("parentsummary", "epiclinksummary", "epicsummary"),
    Field.GROUP_NAME: ("feature", "theme", "milestone", "list", "listname", "component", "group"),
    Field.EPIC_NAME: ("epicname",),
    Field.LABELS: ("labels", "label", "tags", "tag"),
    Field.POINTS: ("storypoints", "storypointestimate", "points", "estimate"),
}

# The names a file must have one of to be mapped at all.
REQUIRED = (Field.TITLE, Field.BODY)


def name_key(name: str) -> str:
    """How names are compared: "Custom field (Story Points)" → "storypoints"."""
    stripped = name.strip()
    lowered = stripped.lower()
    if lowered.startswith("custom field (") and lowered.endswith(")"):
        lowered = lowered[len("custom field (") : -1]
    return "".join(char for char in lowered if char.isalnum())


def locate(names: list[str]) -> dict[Field, list[int]]:
    """Each field's column indexes (several for Jira's repeated "Labels" columns): the first
    accepted name present, every column of that name."""
    at: dict[str, list[int]] = {}
    for index, name in enumerate(names):
        at.setdefault(name_key(name), []).append(index)
    found: dict[Field, list[int]] = {}
    for field, accepted in NAMES.items():
        for wanted in accepted:
            if wanted in at:
                found[field] = at[wanted]
                break
    if Field.EPIC_NAME in found and Field.TITLE not in found:
        found[Field.TITLE] = found[Field.EPIC_NAME]
    return found


def accepted_names(field: Field) -> str:
    return ", ".join(NAMES[field])

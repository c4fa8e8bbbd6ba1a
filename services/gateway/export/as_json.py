"""The backlog as JSON: ``{project: {id, name}, epics: [{epic, stories: [{story, subtasks:
[...]}]}]}``, the shape of ``GET /v1/projects/{id}/subtasks`` plus the project and, when
given, the quality report and its open questions; :meth:`Backlog.from_dict` reads it back."""

from __future__ import annotations

import json
from typing import Any

from services.gateway.export.backlog import Backlog


def backlog_to_dict(backlog: Backlog) -> dict[str, Any]:
    backlog = backlog.ordered()
    body = {
        "project": {"id": backlog.project.id, "name": backlog.project.name},
        "epics": [
            {
                "epic": node.epic.model_dump(mode="json"),
                "stories": [
                    {
                        "story": child.story.model_dump(mode="json"),
                        "subtasks": [s.model_dump(mode="json") for s in child.subtasks],
                    }
                    for child in node.stories
                ],
            }
            for node in backlog.epics
        ],
    }
    if backlog.quality is not None:
        report = backlog.quality.model_dump(mode="json")
        body["open_questions"] = report.pop("open_questions")
        body["quality"] = report
    return body


def render_json(backlog: Backlog) -> str:
    return json.dumps(backlog_to_dict(backlog), indent=2, ensure_ascii=False) + "\n"

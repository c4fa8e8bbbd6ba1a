"""The backlog as the exports see it: epics, their stories, their subtasks, always in the
same order (by ``order``, then id), and the project's quality report with whole lists."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from contracts.backlog import Epic, Story, Subtask
from services.gateway.quality import QualityReport


@dataclass(frozen=True, slots=True)
class ProjectRef:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class StoryNode:
    story: Story
    subtasks: tuple[Subtask, ...] = ()


@dataclass(frozen=True, slots=True)
class EpicNode:
    epic: Epic
    stories: tuple[StoryNode, ...] = ()


@dataclass(frozen=True, slots=True)
class BacklogCounts:
    epics: int
    stories: int
    subtasks: int


@dataclass(frozen=True, slots=True)
class Backlog:
    project: ProjectRef
    epics: tuple[EpicNode, ...] = ()
    # The project's quality report with whole lists (open questions included); each format
    # renders it after the items when it is given.
    quality: QualityReport | None = None

    @property
    def counts(self) -> BacklogCounts:
        stories = [node for epic in self.epics for node in epic.stories]
        return BacklogCounts(
            epics=len(self.epics),
            stories=len(stories),
            subtasks=sum(len(node.subtasks) for node in stories),
        )

    def ordered(self) -> Backlog:
        """The same backlog, every level sorted by ``order`` then id."""
        return Backlog(
            self.project,
            tuple(
                EpicNode(
                    node.epic,
                    tuple(
                        StoryNode(
                            child.story,
                            tuple(sorted(child.subtasks, key=lambda s: (s.order, s.subtask_id))),
                        )
                        for child in sorted(
                            node.stories, key=lambda c: (c.story.order, c.story.story_id)
                        )
                    ),
                )
                for node in sorted(self.epics, key=lambda n: (n.epic.order, n.epic.epic_id))
            ),
            self.quality,
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], project: ProjectRef | None = None) -> Backlog:
        """Read the JSON export (or ``GET .../subtasks`` with ``project`` given) back."""
        if project is None:
            raw = data["project"]
            project = ProjectRef(id=str(raw["id"]), name=str(raw["name"]))
        epics = tuple(
            EpicNode(
                Epic.model_validate(entry["epic"]),
                tuple(
                    StoryNode(
                        Story.model_validate(child["story"]),
                        tuple(Subtask.model_validate(s) for s in child.get("subtasks", ())),
                    )
                    for child in entry.get("stories", ())
                ),
            )
            for entry in data.get("epics", ())
        )
        return cls(project, epics)


def build_backlog(
    project: ProjectRef,
    epics: Iterable[Epic],
    stories: Iterable[Story],
    subtasks: Iterable[Subtask],
    quality: QualityReport | None = None,
) -> Backlog:
    """A backlog from flat rows, ordered. A story whose epic or a subtask whose story is not
    in the input (a projection still catching up) is left out, never shown at the top."""
    by_story: dict[str, list[Subtask]] = {}
    for subtask in subtasks:
        by_story.setdefault(subtask.story_id, []).append(subtask)
    by_epic: dict[str, list[StoryNode]] = {}
    for story in stories:
        node = StoryNode(story, tuple(by_story.get(story.story_id, ())))
        by_epic.setdefault(story.epic_id, []).append(node)
    nodes = tuple(EpicNode(epic, tuple(by_epic.get(epic.epic_id, ()))) for epic in epics)
    return Backlog(project, nodes, quality).ordered()

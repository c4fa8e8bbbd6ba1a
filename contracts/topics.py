"""The topic registry of DESIGN.md: every topic cardflow reads or writes, in one place.

Names carry a major version: a breaking payload change gets a new ``.v2`` topic, an additive
one does not. Every topic has a dead-letter twin named ``<topic>.dlq``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

DLQ_SUFFIX = ".dlq"


class TopicKind(StrEnum):
    COMMAND = "command"
    DOMAIN = "domain"
    PROGRESS = "progress"
    DEAD_LETTER = "dead_letter"


@dataclass(frozen=True, slots=True)
class Topic:
    name: str
    kind: TopicKind
    key: str
    """What the Kafka key is: the entity whose events must stay in order."""
    description: str

    @property
    def dlq(self) -> str:
        return dead_letter_topic(self.name)


def dead_letter_topic(name: str) -> str:
    return name + DLQ_SUFFIX


ANALYSIS_REQUESTED = Topic(
    "cardflow.analysis.requested.v1", TopicKind.COMMAND, "run id", "Analyse cards of a run."
)
EPICS_REQUESTED = Topic(
    "cardflow.epics.requested.v1",
    TopicKind.COMMAND,
    "run id",
    "Generate epics from analysed cards.",
)
STORIES_REQUESTED = Topic(
    "cardflow.stories.requested.v1",
    TopicKind.COMMAND,
    "epic id (run id when one request carries several epics)",
    "Generate stories for epics.",
)
SUBTASKS_REQUESTED = Topic(
    "cardflow.subtasks.requested.v1",
    TopicKind.COMMAND,
    "epic id (a pipeline sends one per epic's stories; run id for a whole-scope request)",
    "Generate subtasks for stories.",
)
RUNS_CONTROL = Topic(
    "cardflow.runs.control.v1", TopicKind.COMMAND, "run id", "Cancel or retry a run."
)
CARDS_SUBMITTED = Topic(
    "cardflow.cards.submitted.v1", TopicKind.DOMAIN, "card id", "Cards accepted into a project."
)
CARDS_ANALYZED = Topic(
    "cardflow.cards.analyzed.v1", TopicKind.DOMAIN, "card id", "A card's analysis was produced."
)
EPICS_GENERATED = Topic(
    "cardflow.epics.generated.v1", TopicKind.DOMAIN, "epic id", "An epic was generated or updated."
)
STORIES_GENERATED = Topic(
    "cardflow.stories.generated.v1",
    TopicKind.DOMAIN,
    "epic id",
    "The stories of an epic were generated or regenerated (the set replaces the old one).",
)
SUBTASKS_GENERATED = Topic(
    "cardflow.subtasks.generated.v1",
    TopicKind.DOMAIN,
    "story id",
    "The subtasks of a story were generated or regenerated (the set replaces the old one).",
)
RUNS_PROGRESS = Topic(
    "cardflow.runs.progress.v1",
    TopicKind.PROGRESS,
    "run id",
    "Run started, item started/heartbeat/succeeded/failed, run finished.",
)

ALL_TOPICS: tuple[Topic, ...] = (
    ANALYSIS_REQUESTED,
    EPICS_REQUESTED,
    STORIES_REQUESTED,
    SUBTASKS_REQUESTED,
    RUNS_CONTROL,
    CARDS_SUBMITTED,
    CARDS_ANALYZED,
    EPICS_GENERATED,
    STORIES_GENERATED,
    SUBTASKS_GENERATED,
    RUNS_PROGRESS,
)

TOPICS_BY_NAME: dict[str, Topic] = {t.name: t for t in ALL_TOPICS}


def all_topic_names(*, with_dead_letters: bool = True) -> list[str]:
    names = [t.name for t in ALL_TOPICS]
    if with_dead_letters:
        names += [t.dlq for t in ALL_TOPICS]
    return names

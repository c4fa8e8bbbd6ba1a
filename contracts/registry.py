"""Every versioned model that travels on Kafka, in one list.

A model listed here gets a committed JSON Schema (``make schemas``) and, once its file is
copied to ``schemas/published/``, the compatibility guard of ``tests/contract``. Adding a
payload is one line: ``Versioned("cardflow.story.generated", 1, StoryGenerated)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from contracts import events
from contracts.envelope import ENVELOPE_SCHEMA_VERSION, Envelope


@dataclass(frozen=True, slots=True)
class Versioned:
    name: str
    """The event ``type`` for a payload (``cardflow.story.generated``); ``envelope`` for it."""
    version: int
    model: type[BaseModel]

    @property
    def file_name(self) -> str:
        return f"{self.name}.v{self.version}.json"


REGISTRY: tuple[Versioned, ...] = (
    Versioned("envelope", ENVELOPE_SCHEMA_VERSION, Envelope),
    Versioned(events.CardSubmitted.TYPE, 1, events.CardSubmitted),
    Versioned(events.CardAnalyzed.TYPE, 1, events.CardAnalyzed),
    Versioned(events.EpicGenerated.TYPE, 1, events.EpicGenerated),
    Versioned(events.StoriesGenerated.TYPE, 1, events.StoriesGenerated),
    Versioned(events.SubtasksGenerated.TYPE, 1, events.SubtasksGenerated),
    Versioned(events.AnalysisRequested.TYPE, 1, events.AnalysisRequested),
    Versioned(events.EpicsRequested.TYPE, 1, events.EpicsRequested),
    Versioned(events.StoriesRequested.TYPE, 1, events.StoriesRequested),
    Versioned(events.SubtasksRequested.TYPE, 1, events.SubtasksRequested),
    Versioned(events.RunControl.TYPE, 1, events.RunControl),
    Versioned(events.RunProgress.TYPE, 1, events.RunProgress),
)

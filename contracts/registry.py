"""Every versioned model that travels on Kafka, in one list.

A model listed here gets a committed JSON Schema (``make schemas``) and, once its file is
copied to ``schemas/published/``, the compatibility guard of ``tests/contract``. Adding a
payload is one line: ``Versioned("cardflow.story.generated", 1, StoryGenerated)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

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
    # Payloads, one line each: Versioned("cardflow.story.generated", 1, StoryGenerated),
)

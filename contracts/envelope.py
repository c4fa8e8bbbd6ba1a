"""The envelope every message on Kafka travels in (CloudEvents-like, see DESIGN.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from contracts.ids import new_event_id

ENVELOPE_SCHEMA_VERSION = 1


class Envelope(BaseModel):
    """A versioned payload with the ids that trace it to its tenant, run and cause.

    ``correlation_id`` names the top-level run (or request) a message belongs to and is
    copied unchanged to everything it causes; ``causation_id`` is the id of the one event
    that directly caused this one.
    """

    # Tolerant reader: a newer producer may add optional fields; old consumers ignore them.
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str = Field(default_factory=new_event_id, description="UUIDv7 of this event.")
    type: str = Field(
        min_length=1,
        pattern=r"^cardflow\.[a-z0-9_.]+$",
        description="What happened or is asked, e.g. cardflow.story.generated.",
    )
    schema_version: int = Field(ge=1, description="Version of the payload schema of `type`.")
    source: str = Field(min_length=1, description="The service that emitted the event.")
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    tenant_id: str = Field(min_length=1)
    project_id: str | None = None
    run_id: str | None = Field(default=None, description="Set when the event is inside a run.")
    correlation_id: str = Field(min_length=1, description="The top-level run or request.")
    causation_id: str | None = Field(
        default=None, description="Id of the event that caused this one; none for a root."
    )
    key: str = Field(min_length=1, description="Kafka key: orders events of one entity.")
    data: dict[str, Any] = Field(default_factory=dict, description="The versioned payload.")

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Envelope:
        return cls.model_validate_json(raw)

    def caused(
        self,
        *,
        type: str,
        schema_version: int,
        source: str,
        key: str,
        data: dict[str, Any],
        run_id: str | None = None,
        project_id: str | None = None,
    ) -> Envelope:
        """A new event caused by this one: same tenant and correlation, causation = self.id.

        The run and project are inherited unless given, so a stage that starts a child run
        can name it while keeping the top-level correlation.
        """
        return Envelope(
            type=type,
            schema_version=schema_version,
            source=source,
            tenant_id=self.tenant_id,
            project_id=project_id if project_id is not None else self.project_id,
            run_id=run_id if run_id is not None else self.run_id,
            correlation_id=self.correlation_id,
            causation_id=self.id,
            key=key,
            data=data,
        )


def root_envelope(
    *,
    type: str,
    schema_version: int,
    source: str,
    tenant_id: str,
    key: str,
    data: dict[str, Any],
    project_id: str | None = None,
    run_id: str | None = None,
    correlation_id: str | None = None,
) -> Envelope:
    """An event with no cause inside the system (an HTTP request, a CLI command).

    Its correlation id is the run it starts when there is one, else its own id, so every
    descendant can be traced back to it.
    """
    event_id = new_event_id()
    return Envelope(
        id=event_id,
        type=type,
        schema_version=schema_version,
        source=source,
        tenant_id=tenant_id,
        project_id=project_id,
        run_id=run_id,
        correlation_id=correlation_id or run_id or event_id,
        causation_id=None,
        key=key,
        data=data,
    )


class Lineage(Protocol):
    """Where an event belongs: its tenant, project and run, the top-level run or request
    (correlation) and the event that caused it. A stage's stored run keeps these of the
    command that opened it."""

    @property
    def tenant_id(self) -> str: ...
    @property
    def project_id(self) -> str | None: ...
    @property
    def run_id(self) -> str | None: ...
    @property
    def correlation_id(self) -> str: ...
    @property
    def causation_id(self) -> str | None: ...


def caused_by(
    lineage: Lineage,
    *,
    type: str,
    schema_version: int,
    source: str,
    key: str,
    data: dict[str, Any],
) -> Envelope:
    """An event with ``lineage``'s tenant, project, run, correlation and causation: what a
    stage emits for a run is caused by the command that opened the run, however much later.

    (``Envelope.caused`` is the other way round: an event caused by that envelope itself.)
    """
    return Envelope(
        type=type,
        schema_version=schema_version,
        source=source,
        tenant_id=lineage.tenant_id,
        project_id=lineage.project_id,
        run_id=lineage.run_id,
        correlation_id=lineage.correlation_id,
        causation_id=lineage.causation_id,
        key=key,
        data=data,
    )

"""cardflow's wire contracts: the event envelope, topic names and schema versions.

Data only: nothing here does I/O or knows about a service.
"""

from contracts.envelope import (
    ENVELOPE_SCHEMA_VERSION,
    Envelope,
    Lineage,
    caused_by,
    root_envelope,
)
from contracts.ids import new_event_id
from contracts.topics import (
    ALL_TOPICS,
    TOPICS_BY_NAME,
    Topic,
    TopicKind,
    all_topic_names,
    dead_letter_topic,
)

__all__ = [
    "ALL_TOPICS",
    "ENVELOPE_SCHEMA_VERSION",
    "TOPICS_BY_NAME",
    "Envelope",
    "Lineage",
    "Topic",
    "TopicKind",
    "all_topic_names",
    "caused_by",
    "dead_letter_topic",
    "new_event_id",
    "root_envelope",
]

"""Dead letters, pure: a ``.dlq`` record parsed, the replay ledger, which dead letters a
command selects, and the headers and plan of a replay (the package docstring says how replay
works). No Kafka here: ``kafka.py`` reads and publishes around these."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from contracts import Envelope
from contracts.topics import DLQ_SUFFIX
from services.runtime.delivery import DEAD_LETTER_HEADER_PREFIX

LEDGER_TOPIC = "cardflow.dlq.replayed.v1"
"""Logical name (the topic prefix is added): which dead letters were replayed."""
REPLAY_OF_HEADER = "cardflow_replay_of"
"""On a replayed message: the ref of the dead letter it came from; kept on its next dead
letter if it fails again, so ``list`` shows the lineage."""


@dataclass(frozen=True, slots=True)
class Replay:
    """A ledger record: when a dead letter was replayed and where its copy went."""

    at: str
    topic: str
    partition: int | None
    offset: int | None


@dataclass(frozen=True, slots=True)
class DeadLetterRecord:
    """One record of a ``.dlq`` topic, its headers parsed. Topic names are physical (with
    the prefix), as Kafka tools show them."""

    dlq_topic: str
    partition: int
    offset: int
    original_topic: str
    original_partition: int | None
    original_offset: int | None
    consumer: str
    code: str
    message: str
    attempts: int | None
    time: str
    event_id: str | None
    event_type: str | None
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    replay_of: str | None = None
    replayed: Replay | None = None

    @property
    def ref(self) -> str:
        """The dead letter's own id: its place in its ``.dlq`` topic."""
        return f"{self.dlq_topic}:{self.partition}:{self.offset}"

    @property
    def waiting(self) -> bool:
        return self.replayed is None

    def as_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "dlq_topic": self.dlq_topic,
            "partition": self.partition,
            "offset": self.offset,
            "original_topic": self.original_topic,
            "original_partition": self.original_partition,
            "original_offset": self.original_offset,
            "consumer": self.consumer,
            "code": self.code,
            "message": self.message,
            "attempts": self.attempts,
            "time": self.time,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "key": _text(self.key),
            "value_preview": _text(self.value[:300]),
            "replay_of": self.replay_of,
            "waiting": self.waiting,
            "replayed": None
            if self.replayed is None
            else {
                "at": self.replayed.at,
                "topic": self.replayed.topic,
                "partition": self.replayed.partition,
                "offset": self.replayed.offset,
            },
        }


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("utf-8", errors="replace")


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def parse_dead_letter(
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: Iterable[tuple[str, bytes | None]],
    timestamp_ms: int | None = None,
) -> DeadLetterRecord:
    """A ``.dlq`` record as the delivery wrapper wrote it; tolerant of records written by
    anything else (missing headers fall back to what the topic name and timestamp say)."""
    kept = tuple((name, raw or b"") for name, raw in headers)
    text = {name: raw.decode("utf-8", errors="replace") for name, raw in kept}
    event_id = event_type = None
    if value:
        try:
            envelope = Envelope.from_bytes(value)
        except ValidationError:
            pass
        else:
            event_id, event_type = envelope.id, envelope.type
    when = text.get("dlq_time")
    if not when and timestamp_ms is not None:
        when = datetime.fromtimestamp(timestamp_ms / 1000, UTC).isoformat()
    return DeadLetterRecord(
        dlq_topic=topic,
        partition=partition,
        offset=offset,
        original_topic=text.get("dlq_original_topic") or topic.removesuffix(DLQ_SUFFIX),
        original_partition=_int(text.get("dlq_original_partition")),
        original_offset=_int(text.get("dlq_original_offset")),
        consumer=text.get("dlq_consumer", ""),
        code=text.get("dlq_error_code", "unknown"),
        message=text.get("dlq_error_message", ""),
        attempts=_int(text.get("dlq_attempts")),
        time=when or "",
        event_id=event_id,
        event_type=event_type,
        key=key,
        value=value or b"",
        headers=kept,
        replay_of=text.get(REPLAY_OF_HEADER),
    )


def ledger_record(letter: DeadLetterRecord, replay: Replay) -> tuple[bytes, bytes]:
    """(key, value) of the ledger record saying ``letter`` was replayed."""
    value = {
        "ref": letter.ref,
        "event_id": letter.event_id,
        "replayed_at": replay.at,
        "replayed_to": {
            "topic": replay.topic,
            "partition": replay.partition,
            "offset": replay.offset,
        },
    }
    return letter.ref.encode(), json.dumps(value).encode()


def parse_ledger(records: Iterable[tuple[bytes | None, bytes | None]]) -> dict[str, Replay]:
    """The ledger's (key, value) records in offset order → ref → its replay. The last record
    of a key wins (compaction keeps only it anyway); a tombstone forgets the replay. A value
    that does not parse still counts as replayed: never replay twice on a doubt."""
    ledger: dict[str, Replay] = {}
    for key, value in records:
        if not key:
            continue
        ref = key.decode("utf-8", errors="replace")
        if value is None:
            ledger.pop(ref, None)
            continue
        try:
            body = json.loads(value)
            to = body.get("replayed_to") or {}
            ledger[ref] = Replay(
                at=str(body.get("replayed_at") or ""),
                topic=str(to.get("topic") or ""),
                partition=to.get("partition"),
                offset=to.get("offset"),
            )
        except (ValueError, AttributeError):
            ledger[ref] = Replay(at="", topic="", partition=None, offset=None)
    return ledger


def with_replays(
    letters: Iterable[DeadLetterRecord], ledger: dict[str, Replay]
) -> list[DeadLetterRecord]:
    return [replace(letter, replayed=ledger.get(letter.ref)) for letter in letters]


def topic_candidates(wanted: str, prefix: str) -> set[str]:
    """The physical original topics ``--topic`` may name: given with or without the topic
    prefix, as the topic or as its ``.dlq``."""
    base = wanted.removesuffix(DLQ_SUFFIX)
    return {base, prefix + base}


def dlq_topic_selected(dlq_topic: str, wanted: Sequence[str], prefix: str) -> bool:
    """Whether a ``.dlq`` topic is among those asked for (all when none are asked for)."""
    if not dlq_topic.startswith(prefix) or not dlq_topic.endswith(DLQ_SUFFIX):
        return False
    if not wanted:
        return True
    original = dlq_topic.removesuffix(DLQ_SUFFIX)
    return any(original in topic_candidates(w, prefix) for w in wanted)


def replay_headers(letter: DeadLetterRecord) -> list[tuple[str, bytes]]:
    """The original headers without the dead-letter ones, plus where the copy came from."""
    kept = [
        (name, raw)
        for name, raw in letter.headers
        if not name.startswith(DEAD_LETTER_HEADER_PREFIX) and name != REPLAY_OF_HEADER
    ]
    return [*kept, (REPLAY_OF_HEADER, letter.ref.encode())]


def _origin(letter: DeadLetterRecord) -> tuple[object, ...]:
    """What makes two dead letters the same message: the event (two consumer groups of one
    topic, or a dead letter written twice) or, for a message that is no envelope, its place."""
    if letter.event_id:
        return (letter.original_topic, "event", letter.event_id)
    if letter.original_offset is not None:
        return (letter.original_topic, letter.original_partition, letter.original_offset)
    return ("ref", letter.ref)


@dataclass(frozen=True, slots=True)
class ReplayPlan:
    groups: tuple[tuple[DeadLetterRecord, ...], ...]
    """Each group is one message, published once; every dead letter of it is marked."""
    already_replayed: tuple[DeadLetterRecord, ...]
    unknown_ids: tuple[str, ...]
    """Asked-for ids no dead letter has; a plan with any replays nothing."""


def plan_replay(
    letters: Sequence[DeadLetterRecord],
    *,
    topics: Sequence[str] = (),
    ids: Sequence[str] = (),
    prefix: str = "",
) -> ReplayPlan:
    """The dead letters ``replay --topic``/``--id`` means. An id is an event id or a dead
    letter's ref (for messages that are no envelope). Already replayed ones are left out."""
    if topics:
        wanted = set().union(*(topic_candidates(t, prefix) for t in topics))
        chosen = [letter for letter in letters if letter.original_topic in wanted]
        unknown: list[str] = []
    else:
        asked = set(ids)
        chosen = [letter for letter in letters if {letter.event_id, letter.ref} & asked]
        found = {letter.event_id for letter in chosen} | {letter.ref for letter in chosen}
        unknown = [i for i in dict.fromkeys(ids) if i not in found]
    groups: dict[tuple[object, ...], list[DeadLetterRecord]] = {}
    for letter in chosen:
        if letter.waiting:
            groups.setdefault(_origin(letter), []).append(letter)
    return ReplayPlan(
        groups=tuple(tuple(group) for group in groups.values()),
        already_replayed=tuple(letter for letter in chosen if not letter.waiting),
        unknown_ids=tuple(unknown),
    )


@dataclass(frozen=True, slots=True)
class DeadLetters:
    """What a scan found: the ``.dlq`` topics read and their records, oldest first."""

    topics: tuple[str, ...]
    letters: tuple[DeadLetterRecord, ...]

    def waiting_by_topic(self) -> dict[str, int]:
        """Dead letters not replayed yet, by original topic; every topic read is there, with
        0 when none wait (so a gauge falls back to 0 after a replay)."""
        counts = {topic.removesuffix(DLQ_SUFFIX): 0 for topic in self.topics}
        for letter in self.letters:
            if letter.waiting:
                counts[letter.original_topic] = counts.get(letter.original_topic, 0) + 1
        return counts

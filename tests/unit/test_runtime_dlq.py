"""Dead letters without Kafka: parsing a ``.dlq`` record, the replay ledger, what a replay
selects and publishes, the waiting count and gauge, and the ``cardflow dlq`` arguments and
output."""

from __future__ import annotations

import io
import json
from types import SimpleNamespace

import pytest
from prometheus_client import REGISTRY

from contracts import root_envelope
from services.gateway import cardflow
from services.runtime.delivery import DeadLetter, carried_headers, dead_letter_headers
from services.runtime.dlq import command as dlq_cli
from services.runtime.dlq import kafka as dlq_kafka
from services.runtime.dlq import records as dlq_records

PREFIX = "env1."
TOPIC = f"{PREFIX}cardflow.cards.analyzed.v1"
DLQ = f"{TOPIC}.dlq"


def sample_envelope(item: str = "card-1"):  # type: ignore[no-untyped-def]
    return root_envelope(
        type="cardflow.card.analyzed",
        schema_version=1,
        source="analysis",
        tenant_id="t1",
        key=item,
        data={"item": item},
    )


def dlq_headers(
    *,
    consumer: str = "env1.gateway.cardflow.cards.analyzed.v1",
    code: str = "internal",
    reason: str = "ConnectionError: database blip",
    partition: int = 0,
    offset: int = 7,
    attempts: int = 5,
    original: dict[str, str] | None = None,
    topic: str = TOPIC,
) -> list[tuple[str, bytes]]:
    """Headers as the delivery wrapper writes them on a dead letter."""
    record = SimpleNamespace(topic=topic, partition=partition, offset=offset)
    headers = dict(original or {})
    headers.update(dead_letter_headers(record, consumer, DeadLetter(code, reason), attempts))  # type: ignore[arg-type]
    return [(k, v.encode()) for k, v in headers.items()]


def letter(
    offset: int,
    *,
    value: bytes | None = None,
    event: bool = True,
    original_offset: int | None = None,
    consumer: str = "env1.gateway.cardflow.cards.analyzed.v1",
    dlq_topic: str = DLQ,
) -> dlq_records.DeadLetterRecord:
    if value is None:
        value = sample_envelope(f"card-{offset}").to_bytes() if event else b"{not json"
    return dlq_records.parse_dead_letter(
        dlq_topic,
        0,
        offset,
        b"k",
        value,
        dlq_headers(
            offset=offset if original_offset is None else original_offset,
            consumer=consumer,
            topic=dlq_topic.removesuffix(".dlq"),
        ),
    )


# --- parsing -------------------------------------------------------------------------------


def test_a_dead_letter_of_the_delivery_wrapper_parses_with_its_envelope() -> None:
    sent = sample_envelope()
    original = {"correlation_id": sent.correlation_id, "ce_id": sent.id}
    parsed = dlq_records.parse_dead_letter(
        DLQ, 2, 41, b"card-1", sent.to_bytes(), dlq_headers(original=original, partition=1)
    )
    assert parsed.ref == f"{DLQ}:2:41"
    assert (parsed.original_topic, parsed.original_partition, parsed.original_offset) == (
        TOPIC,
        1,
        7,
    )
    assert (parsed.consumer, parsed.code, parsed.attempts) == (
        "env1.gateway.cardflow.cards.analyzed.v1",
        "internal",
        5,
    )
    assert parsed.message == "ConnectionError: database blip"
    assert (parsed.event_id, parsed.event_type) == (sent.id, "cardflow.card.analyzed")
    assert parsed.time
    assert parsed.waiting
    assert parsed.replay_of is None
    assert parsed.as_json()["event_id"] == sent.id


def test_a_poison_dead_letter_has_no_event_and_foreign_records_fall_back() -> None:
    poison = dlq_records.parse_dead_letter(DLQ, 0, 3, None, b"{this is not json", dlq_headers())
    assert (poison.event_id, poison.event_type) == (None, None)
    assert poison.as_json()["value_preview"] == "{this is not json"
    bare = dlq_records.parse_dead_letter(DLQ, 0, 4, None, None, [], timestamp_ms=0)
    assert bare.original_topic == TOPIC
    assert (bare.code, bare.attempts, bare.original_offset) == ("unknown", None, None)
    assert bare.time.startswith("1970-01-01")
    assert bare.value == b""


def test_a_dead_letter_keeps_the_original_headers_but_not_an_earlier_failure() -> None:
    original = [
        ("correlation_id", b"run-1"),
        ("dlq_error_code", b"input_invalid"),  # of the dead letter this one is a replay of
        ("cardflow_replay_of", b"x.dlq:0:1"),
        ("empty", None),
    ]
    assert carried_headers(original) == {
        "correlation_id": "run-1",
        "cardflow_replay_of": "x.dlq:0:1",
        "empty": "",
    }
    assert carried_headers(None) == {}


def test_a_replay_publishes_the_original_headers_and_names_its_dead_letter() -> None:
    parsed = dlq_records.parse_dead_letter(
        DLQ,
        0,
        9,
        b"k",
        b"v",
        [*dlq_headers(original={"correlation_id": "run-1"}), ("cardflow_replay_of", b"old:0:1")],
    )
    assert dlq_records.replay_headers(parsed) == [
        ("correlation_id", b"run-1"),
        ("cardflow_replay_of", f"{DLQ}:0:9".encode()),
    ]


# --- the ledger ----------------------------------------------------------------------------


def test_the_ledger_keeps_the_last_record_per_ref_and_forgets_on_a_tombstone() -> None:
    one, two = letter(1), letter(2)
    first = dlq_records.Replay("t1", TOPIC, 0, 10)
    records = [
        dlq_records.ledger_record(one, first),
        dlq_records.ledger_record(two, dlq_records.Replay("t1", TOPIC, 0, 11)),
        (two.ref.encode(), None),
        (b"other.dlq:0:5", b"not json"),
        (None, b"{}"),
    ]
    ledger = dlq_records.parse_ledger(records)
    assert ledger[one.ref] == first
    assert two.ref not in ledger
    assert ledger["other.dlq:0:5"] == dlq_records.Replay("", "", None, None)  # a doubt: replayed
    marked = dlq_records.with_replays([one, two], ledger)
    assert [m.waiting for m in marked] == [False, True]
    assert marked[0].as_json()["replayed"] == {
        "at": "t1",
        "topic": TOPIC,
        "partition": 0,
        "offset": 10,
    }


# --- selecting -----------------------------------------------------------------------------


def test_topics_are_selected_with_or_without_the_prefix_and_as_topic_or_dlq() -> None:
    for asked in (TOPIC, DLQ, "cardflow.cards.analyzed.v1", "cardflow.cards.analyzed.v1.dlq"):
        assert dlq_records.dlq_topic_selected(DLQ, [asked], PREFIX), asked
    assert dlq_records.dlq_topic_selected(DLQ, [], PREFIX)
    assert not dlq_records.dlq_topic_selected(DLQ, ["cardflow.epics.generated.v1"], PREFIX)
    assert not dlq_records.dlq_topic_selected("env2.cardflow.cards.analyzed.v1.dlq", [], PREFIX)
    assert not dlq_records.dlq_topic_selected(TOPIC, [], PREFIX)


def test_replay_by_topic_takes_the_waiting_ones_and_one_message_per_event() -> None:
    a = letter(1)
    # The same event dead-lettered by a second consumer group of the topic: one copy.
    a_again = dlq_records.parse_dead_letter(
        DLQ, 0, 2, b"k", a.value, dlq_headers(offset=1, consumer="env1.epics.x")
    )
    done = dlq_records.with_replays(
        [letter(3)], {f"{DLQ}:0:3": dlq_records.Replay("t", TOPIC, 0, 99)}
    )[0]
    other = letter(4, dlq_topic="env1.cardflow.epics.generated.v1.dlq")
    plan = dlq_records.plan_replay(
        [a, a_again, done, other], topics=["cardflow.cards.analyzed.v1"], prefix=PREFIX
    )
    assert plan.groups == ((a, a_again),)
    assert plan.already_replayed == (done,)
    assert plan.unknown_ids == ()


def test_poison_is_one_message_per_original_place() -> None:
    first = letter(1, event=False, original_offset=50)
    twice = letter(2, event=False, original_offset=50)  # a dead letter written twice
    other = letter(3, event=False, original_offset=51)
    plan = dlq_records.plan_replay([first, twice, other], topics=[TOPIC], prefix=PREFIX)
    assert plan.groups == ((first, twice), (other,))


def test_replay_by_id_matches_event_ids_and_refs_and_reports_the_unknown() -> None:
    a, b, poison = letter(1), letter(2), letter(3, event=False)
    plan = dlq_records.plan_replay([a, b, poison], ids=[str(b.event_id), poison.ref], prefix=PREFIX)
    assert plan.groups == ((b,), (poison,))
    assert plan.unknown_ids == ()
    missing = dlq_records.plan_replay([a], ids=["nope", str(a.event_id), "nope"])
    assert missing.unknown_ids == ("nope",)
    replayed = dlq_records.with_replays([a], {a.ref: dlq_records.Replay("t", TOPIC, 0, 1)})
    again = dlq_records.plan_replay(replayed, ids=[str(a.event_id)])
    assert (again.groups, again.already_replayed, again.unknown_ids) == ((), tuple(replayed), ())


# --- waiting -------------------------------------------------------------------------------


def test_waiting_is_counted_per_original_topic_with_zeros() -> None:
    epics_dlq = "env1.cardflow.epics.generated.v1.dlq"
    done = dlq_records.with_replays(
        [letter(3)], {f"{DLQ}:0:3": dlq_records.Replay("t", TOPIC, 0, 9)}
    )[0]
    found = dlq_records.DeadLetters((DLQ, epics_dlq), (letter(1), letter(2), done))
    assert found.waiting_by_topic() == {TOPIC: 2, "env1.cardflow.epics.generated.v1": 0}


def test_the_gauge_follows_the_scans_and_drops_deleted_topics() -> None:
    gone, kept = "unit.gauge.gone", "unit.gauge.kept"

    def value(topic: str) -> float | None:
        return REGISTRY.get_sample_value("cardflow_dead_letters_waiting", {"topic": topic})

    exported = dlq_kafka.set_waiting_gauge({gone: 2, kept: 1}, set())
    assert (value(gone), value(kept)) == (2.0, 1.0)
    exported = dlq_kafka.set_waiting_gauge({kept: 0}, exported)
    assert (value(gone), value(kept), exported) == (None, 0.0, {kept})


# --- the CLI -------------------------------------------------------------------------------


def test_dlq_arguments() -> None:
    listing = cardflow.parse_args(["dlq", "list", "--topic", "a", "--topic", "b", "--json"], {})
    assert (listing.command, listing.dlq_command, listing.topic, listing.json) == (
        "dlq",
        "list",
        ["a", "b"],
        True,
    )
    by_id = cardflow.parse_args(
        ["dlq", "replay", "--id", "e1", "e2", "--id", "e3", "--dry-run"], {}
    )
    assert (by_id.ids, by_id.topic, by_id.dry_run) == (["e1", "e2", "e3"], None, True)
    by_topic = cardflow.parse_args(["dlq", "replay", "--topic", "t"], {})
    assert (by_topic.topic, by_topic.ids, by_topic.dry_run) == (["t"], None, False)


@pytest.mark.parametrize(
    "argv",
    [["dlq", "replay"], ["dlq", "replay", "--topic", "t", "--id", "e"], ["dlq"]],
)
def test_dlq_usage_errors_exit_2(argv: list[str]) -> None:
    err = io.StringIO()
    assert cardflow.main(argv, env={}, stdout=io.StringIO(), stderr=err) == 2


def test_dlq_settings_come_from_the_kafka_environment() -> None:
    settings = dlq_cli.settings_from(
        {
            "CARDFLOW_KAFKA_BOOTSTRAP_SERVERS": "k1:9092,k2:9092",
            "CARDFLOW_KAFKA_TOPIC_PREFIX": "staging.",
            "CARDFLOW_KAFKA_REPLICATION_FACTOR": "3",
            "CARDFLOW_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "CARDFLOW_KAFKA_SASL_USERNAME": "ops",
            "CARDFLOW_KAFKA_SASL_PASSWORD": "pw",
        }
    )
    assert settings.kafka_bootstrap_servers == "k1:9092,k2:9092"
    assert settings.topic(dlq_records.LEDGER_TOPIC) == "staging.cardflow.dlq.replayed.v1"
    assert settings.kafka_replication_factor == 3
    # The cluster's security, as the services connect.
    assert settings.kafka_security_protocol == "SASL_SSL"
    assert settings.kafka_sasl_username == "ops"


def test_list_output_says_why_and_what_waits() -> None:
    poison = letter(1, event=False)
    a = letter(2)
    done = dlq_records.with_replays(
        [letter(3)], {f"{DLQ}:0:3": dlq_records.Replay("t9", TOPIC, 0, 9)}
    )[0]
    found = dlq_records.DeadLetters((DLQ,), (poison, a, done))
    text = "\n".join(dlq_cli.list_lines(found))
    assert f"{DLQ}:0:1  waiting" in text
    assert "internal after 5 attempt(s): ConnectionError: database blip" in text
    assert "(no envelope)" in text
    assert f"event    {a.event_id}  cardflow.card.analyzed" in text
    assert f"{DLQ}:0:3  replayed t9 to {TOPIC} [0] @9" in text
    assert "3 dead letters, 2 waiting for replay" in text
    assert f"  {TOPIC}: 2" in text
    waiting_only = "\n".join(dlq_cli.list_lines(found, waiting_only=True))
    assert f"{DLQ}:0:3" not in waiting_only
    as_json = dlq_cli.list_json(found)
    assert (as_json["total"], as_json["waiting_total"], as_json["waiting"]) == (3, 2, {TOPIC: 2})
    assert dlq_cli.list_lines(dlq_records.DeadLetters((), ())) == [
        "no dead letters (0 .dlq topics read)"
    ]


def test_replay_output() -> None:
    a, b = letter(1), letter(2)
    done = dlq_records.with_replays(
        [letter(3)], {f"{DLQ}:0:3": dlq_records.Replay("t9", TOPIC, 0, 9)}
    )[0]
    plan = dlq_records.plan_replay([a, b, done], topics=[TOPIC])
    dry = dlq_kafka.ReplayResult(plan, (), dry_run=True)
    assert dlq_cli.replay_lines(dry)[0] == "would replay 2 message(s); nothing was published:"
    assert json.loads(json.dumps(dlq_cli.replay_json(dry)))["messages"][0]["to"] is None
    copies = (dlq_records.Replay("t", TOPIC, 0, 20), dlq_records.Replay("t", TOPIC, 0, 21))
    done_result = dlq_kafka.ReplayResult(plan, copies, dry_run=False)
    text = dlq_cli.replay_lines(done_result)
    assert text[0] == "replayed 2 message(s):"
    assert f"  {a.ref} -> {TOPIC} [0] @20  event {a.event_id}" in text
    assert text[-2:] == ["already replayed (not again):", f"  {done.ref} at t9"]
    nothing = dlq_kafka.ReplayResult(
        dlq_records.plan_replay([done], topics=[TOPIC]), (), dry_run=False
    )
    assert dlq_cli.replay_lines(nothing)[0] == "nothing to replay: no waiting dead letter matches"

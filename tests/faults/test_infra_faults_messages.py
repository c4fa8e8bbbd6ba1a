"""Message faults: an item slower than the consumer's max poll interval, poison messages on
every consumed topic, and every message of a run delivered a second time. One stack for
the module, run with the lowest max poll interval the settings allow (10 s), so the slow
item is slower than it."""

from __future__ import annotations

import time
from typing import Any

import pytest

from contracts import Envelope, events, topics
from tests.faults.kafka_tools import (
    Record,
    committed_past,
    group_members,
    produce,
    read_topics,
    stack_topics,
    topic_groups,
)
from tests.faults.report import FaultRow, record
from tests.faults.support import (
    CallWindow,
    FaultScript,
    fault_llm_env,
    new_nonce,
    outcome,
    start_document_run,
    user_text,
    wait_terminal,
)
from tests.support.scripted_llm import ScriptedLLM
from tests.support.stack import PipelineStack
from tests.support.wait import until_sync

# The first test of a module also starts its stack (and maybe a broker) and a clean run:
# minutes on a loaded 2-core runner, beyond the suite's default 300 s.
pytestmark = [pytest.mark.faults, pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(900)]

STACK_BACKENDS = ("sqlite", pytest.param("postgresql", marks=pytest.mark.faults_full))
MAX_POLL_INTERVAL_S = 10  # the least CARDFLOW_KAFKA_MAX_POLL_INTERVAL_MS allows
SLOW_CALL_S = 14.0


@pytest.fixture(scope="module")
def stack_env(fault_llm: ScriptedLLM) -> dict[str, str]:
    return fault_llm_env(
        fault_llm, CARDFLOW_KAFKA_MAX_POLL_INTERVAL_MS=str(MAX_POLL_INTERVAL_S * 1000)
    )


def test_an_item_slower_than_the_poll_interval_is_processed_once_without_rebalancing(
    fault_stack: PipelineStack, fault_llm: ScriptedLLM, backend: str
) -> None:
    nonce = new_nonce()
    # Only the first card's analysis prompt holds its reference: one slow call, one item.
    slow_marker = f"Reference {nonce}-01."
    fault_llm.reset(FaultScript(slow={slow_marker: SLOW_CALL_S}))
    window = CallWindow(fault_llm)
    consumed = topic_groups(fault_stack.bootstrap, fault_stack.prefix)
    groups = [group for groups in consumed.values() for group in groups]
    began = time.monotonic()
    with fault_stack.client() as client:
        started = start_document_run(client, "slow item", nonce)
        until_sync(
            lambda: [c for c in window.calls if slow_marker in user_text(c)],
            timeout=60,
            what="the slow LLM call",
        )
        before = group_members(fault_stack.bootstrap, groups)
        run = wait_terminal(client, started.run_id)
        after = group_members(fault_stack.bootstrap, groups)
        done = outcome(client, run, started.project_id, window.count())
    elapsed = time.monotonic() - began

    assert run["status"] == "succeeded", (run, fault_stack.logs())
    slow_calls = [c for c in window.calls if slow_marker in user_text(c)]
    assert len(slow_calls) == 1, "the slow item was processed more than once"
    assert done.calls.repeated == 0, done.calls
    # No member left its group (a poll-interval breach makes it leave and rejoin under a
    # new member id) while the slow call ran longer than the interval.
    assert before == after
    assert all(state == "Stable" for state, _ in after.values()), after
    record(
        FaultRow(
            fault="item slower than max.poll.interval",
            injected=f"max poll interval {MAX_POLL_INTERVAL_S} s for every consumer; one "
            f"analysis LLM call answering in {SLOW_CALL_S:.0f} s",
            behaviour=f"run {run['status']} in {elapsed:.0f} s; the item ran outside any Kafka "
            f"handler: no member of the {len(groups)} groups left or rejoined, the slow call "
            "made once",
            backend=backend,
            run_status=run["status"],
            items=done.items,
            repeated_llm_calls=done.calls.repeated,
            lost=done.lost,
            duplicates=len(done.duplicates),
        )
    )


# The payload type of each topic, for a well-formed envelope of an unknown schema version.
TOPIC_TYPES = {
    topics.CARDS_SUBMITTED.name: events.CardSubmitted.TYPE,
    topics.CARDS_ANALYZED.name: events.CardAnalyzed.TYPE,
    topics.EPICS_GENERATED.name: events.EpicGenerated.TYPE,
    topics.STORIES_GENERATED.name: events.StoriesGenerated.TYPE,
    topics.SUBTASKS_GENERATED.name: events.SubtasksGenerated.TYPE,
    topics.ANALYSIS_REQUESTED.name: events.AnalysisRequested.TYPE,
    topics.EPICS_REQUESTED.name: events.EpicsRequested.TYPE,
    topics.STORIES_REQUESTED.name: events.StoriesRequested.TYPE,
    topics.SUBTASKS_REQUESTED.name: events.SubtasksRequested.TYPE,
    topics.RUNS_CONTROL.name: events.RunControl.TYPE,
    topics.RUNS_PROGRESS.name: events.RunProgress.TYPE,
}
# Every topic a service consumes today; consumers found on the broker beyond these are
# tested too.
CONSUMED = {
    topics.CARDS_SUBMITTED.name,
    topics.ANALYSIS_REQUESTED.name,
    topics.CARDS_ANALYZED.name,
    topics.EPICS_REQUESTED.name,
    topics.STORIES_REQUESTED.name,
    topics.SUBTASKS_REQUESTED.name,
    topics.RUNS_PROGRESS.name,
    topics.EPICS_GENERATED.name,
    topics.STORIES_GENERATED.name,
    topics.SUBTASKS_GENERATED.name,
}
NOT_JSON = b"\x00{not json at all"


def poison_for(topic: str, tag: str) -> list[tuple[bytes, str]]:
    """(value, the dead letter's expected reason) of the two poison messages for ``topic``."""
    unknown_version = Envelope(
        type=TOPIC_TYPES.get(topic, "cardflow.unknown"),
        schema_version=99,
        source="fault-test",
        tenant_id="local",
        correlation_id=f"poison-{tag}",
        key=f"poison-{tag}",
        data={"poison": tag},
    )
    return [
        (NOT_JSON + tag.encode(), "not a valid envelope"),
        (unknown_version.to_bytes(), "unknown schema version 99"),
    ]


def dead_letters(
    bootstrap: str, dlqs: list[str], values: set[bytes], want: int
) -> dict[str, list[Record]]:
    """The dead letters of ``values`` on each topic, once there are ``want`` in all."""
    found = {
        dlq: [r for r in records if r.value in values]
        for dlq, records in read_topics(bootstrap, dlqs).items()
    }
    return found if sum(map(len, found.values())) >= want else {}


def test_poison_messages_are_dead_lettered_with_a_reason_and_consumers_move_on(
    fault_stack: PipelineStack, fault_llm: ScriptedLLM, backend: str
) -> None:
    bootstrap, prefix = fault_stack.bootstrap, fault_stack.prefix
    consumed = topic_groups(bootstrap, prefix)
    assert set(consumed) >= CONSUMED, f"consumer groups missing: {CONSUMED - set(consumed)}"
    tag = new_nonce()
    poison = {topic: dict(poison_for(topic, tag)) for topic in consumed}
    began = time.monotonic()
    written = produce(
        bootstrap,
        [(prefix + t, b"poison", value, []) for t, pairs in poison.items() for value in pairs],
    )

    dlqs = {topics.dead_letter_topic(prefix + t): t for t in consumed}
    values = {value for pairs in poison.values() for value in pairs}
    want = sum(len(poison[t]) * len(groups) for t, groups in consumed.items())
    letters = until_sync(
        lambda: dead_letters(bootstrap, list(dlqs), values, want),
        timeout=60,
        interval=0.5,
        what=f"{want} dead letters",
    )
    for dlq, topic in dlqs.items():
        reasons, groups = poison[topic], consumed[topic]
        assert len(letters[dlq]) == len(reasons) * len(groups), (dlq, letters[dlq])
        for letter in letters[dlq]:
            headers = {k: v.decode() for k, v in letter.headers}
            assert headers["dlq_original_topic"] == prefix + topic
            assert headers["dlq_error_code"] == "input_invalid"
            assert reasons[letter.value] in headers["dlq_error_message"], headers
            assert int(headers["dlq_attempts"]) == 1
        by = sorted(dict(r.headers)["dlq_consumer"].decode() for r in letters[dlq])
        assert by == sorted(groups * len(reasons)), f"{dlq}: letters from {by}, not {groups}"

    # Every consumer committed past the poison ...
    physical = {prefix + t: groups for t, groups in consumed.items()}
    until_sync(
        lambda: committed_past(bootstrap, physical, written),
        timeout=30,
        interval=0.5,
        what="every group to commit past the poison",
    )
    # ... and a run afterwards goes through every one of them.
    window = CallWindow(fault_llm)
    with fault_stack.client() as client:
        started = start_document_run(client, "after poison")
        run = wait_terminal(client, started.run_id)
        done = outcome(client, run, started.project_id, window.count())
    elapsed = time.monotonic() - began

    assert run["status"] == "succeeded", (run, fault_stack.logs())
    assert done.calls.repeated == 0
    record(
        FaultRow(
            fault="poison messages",
            injected=f"on each of the {len(consumed)} consumed topics: bytes that are not "
            "JSON, and a valid envelope of schema version 99",
            behaviour=f"each consumer group ({sum(map(len, consumed.values()))}) dead-lettered "
            "both to <topic>.dlq with code input_invalid and the reason, committed past them; "
            f"a run afterwards {run['status']} ({elapsed:.0f} s in all)",
            backend=backend,
            run_status=run["status"],
            items=done.items,
            repeated_llm_calls=done.calls.repeated,
            lost=done.lost,
            duplicates=len(done.duplicates),
        )
    )


# What may differ between two reads of a finished run without anything having changed.
VOLATILE = {"elapsed_seconds", "eta_seconds"}


def stable(run: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in run.items() if k not in VOLATILE}


def test_every_message_of_a_run_delivered_twice_changes_nothing(
    fault_stack: PipelineStack, fault_llm: ScriptedLLM, backend: str
) -> None:
    bootstrap, prefix = fault_stack.bootstrap, fault_stack.prefix
    window = CallWindow(fault_llm)
    with fault_stack.client() as client:
        started = start_document_run(client, "replayed")
        first = wait_terminal(client, started.run_id)
        assert first["status"] == "succeeded", (first, fault_stack.logs())
        clean = outcome(client, first, started.project_id, window.count())
        tree = client.get(f"/v1/projects/{started.project_id}/subtasks").json()
    calls_before = len(window.calls)

    # Every message of the run's project, from offset 0 of every topic, produced again onto
    # the same topic with the same key, value and headers.
    replay = []
    for topic, messages in read_topics(bootstrap, stack_topics(bootstrap, prefix)).items():
        for message in messages:
            try:
                envelope = Envelope.from_bytes(message.value)
            except ValueError:
                continue  # another test's poison
            if envelope.project_id == started.project_id:
                replay.append((topic, message.key, message.value, list(message.headers)))
    replayed_topics = {t for t, *_ in replay}
    began = time.monotonic()
    written = produce(bootstrap, replay)
    physical = {prefix + t: g for t, g in topic_groups(bootstrap, prefix).items()}
    until_sync(
        lambda: committed_past(bootstrap, physical, written),
        timeout=120,
        interval=0.5,
        what="every group to consume the replay",
    )
    consumed_s = time.monotonic() - began

    with fault_stack.client() as client:
        again = client.get(f"/v1/runs/{started.run_id}").json()
        assert stable(again) == stable(first), "the run object changed"
        assert client.get(f"/v1/projects/{started.project_id}/subtasks").json() == tree
        after = outcome(client, again, started.project_id, window.count())
    assert after.backlog == clean.backlog
    assert len(window.calls) == calls_before, "a replayed message caused an LLM call"
    record(
        FaultRow(
            fault="every message delivered twice",
            injected=f"all {len(replay)} messages of a finished run (on {len(replayed_topics)} "
            "topics) produced again from offset 0 onto the same topics",
            behaviour=f"every consumer skipped them (inbox) within {consumed_s:.0f} s: run "
            "object (version included), backlog and LLM calls unchanged",
            backend=backend,
            run_status=again["status"],
            items=after.items,
            repeated_llm_calls=len(window.calls) - calls_before,
            lost=after.lost,
            duplicates=len(after.duplicates),
        )
    )

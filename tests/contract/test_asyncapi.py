"""The committed AsyncAPI document is what the contracts generate, and it hangs together.

No AsyncAPI validator is available offline, so the structure is checked here: the parts of
AsyncAPI 3.0 the generator uses, every ``$ref`` resolving inside the document, and every
operation naming a channel and messages of that channel.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contracts import asyncapi
from contracts.registry import REGISTRY
from contracts.schema import generate_schemas
from contracts.topics import ALL_TOPICS

DOC: dict[str, Any] = json.loads(asyncapi.ASYNCAPI_PATH.read_text(encoding="utf-8"))
GENERATED = asyncapi.generate()
NAME = re.compile(r"^[a-zA-Z0-9.\-_]+$")
DEAD_LETTER_HEADERS = {
    "dlq_original_topic",
    "dlq_original_partition",
    "dlq_original_offset",
    "dlq_consumer",
    "dlq_error_code",
    "dlq_error_message",
    "dlq_attempts",
    "dlq_time",
}
EVENT_HEADERS = {"correlation_id", "causation_id", "ce_id", "ce_type", "ce_source"}


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"{ref} points outside the document"
    node: Any = document
    for token in ref[2:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict), f"{ref}: {token!r} is looked up in a non-object"
        assert token in node, f"{ref} does not resolve: no {token!r}"
        node = node[token]
    return node


def deref(node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        node = resolve(DOC, node["$ref"])
    return node


def reachable_refs(start: Any) -> set[str]:
    """Every ref reachable from ``start``, following refs through the document."""
    seen: set[str] = set()
    todo = list(refs(start))
    while todo:
        ref = todo.pop()
        if ref not in seen:
            seen.add(ref)
            todo.extend(refs(resolve(DOC, ref)))
    return seen


def test_committed_document_is_up_to_date() -> None:
    assert asyncapi.ASYNCAPI_PATH.read_text(encoding="utf-8") == asyncapi.expected_text(), (
        f"{asyncapi.ASYNCAPI_PATH} is stale: run `make schemas` and commit it"
    )


def test_generation_is_deterministic() -> None:
    text = asyncapi.expected_text()
    assert text == asyncapi.expected_text()
    assert text.endswith("}\n")
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_check_mode(tmp_path: Path) -> None:
    target = tmp_path / "asyncapi.json"
    assert asyncapi.main(["--check", "--output", str(target)]) == 1
    assert asyncapi.main(["--output", str(target)]) == 0
    assert asyncapi.main(["--check", "--output", str(target)]) == 0
    target.write_text(target.read_text(encoding="utf-8").replace("cardflow", "cardfl0w", 1))
    assert asyncapi.main(["--check", "--output", str(target)]) == 1


def test_every_topic_and_its_dead_letters_is_a_channel() -> None:
    channels = GENERATED["channels"]
    expected = {t.name for t in ALL_TOPICS} | {t.dlq for t in ALL_TOPICS}
    assert set(channels) == expected
    for topic in ALL_TOPICS:
        for name in (topic.name, topic.dlq):
            channel = channels[name]
            assert channel["address"] == name
            assert channel["bindings"]["kafka"]["topic"] == name
            for message in channel["messages"].values():
                key = deref(message)["bindings"]["kafka"]["key"]
                assert key["type"] == "string"
                assert topic.key in key["description"]
        assert channels[topic.name]["summary"] == topic.description
        assert channels[topic.name]["x-cardflow-kind"] == topic.kind.value


def test_every_registered_payload_travels_on_some_topic() -> None:
    from_channels = reachable_refs(GENERATED["channels"])
    for entry in REGISTRY:
        key = asyncapi.schema_key(entry.name, entry.version)
        assert f"#/components/schemas/{key}" in from_channels, (
            f"{entry.name} v{entry.version} is on no channel: add it to "
            "TOPIC_PAYLOADS in contracts/asyncapi.py"
        )


def test_each_event_message_wraps_its_payload_in_the_envelope() -> None:
    envelope = "#/components/schemas/envelope.v1"
    for topic in ALL_TOPICS:
        for message in GENERATED["channels"][topic.name]["messages"].values():
            body = deref(message)
            outer, inner = body["payload"]["allOf"]
            assert outer == {"$ref": envelope}
            assert inner["properties"]["type"]["const"] == body["name"]
            data = resolve(DOC, inner["properties"]["data"]["$ref"])
            assert data["title"].startswith(body["name"] + " v")
            assert body["correlationId"]["$ref"] == "#/components/correlationIds/correlation_id"
            headers = deref(body["headers"]["allOf"][0])
            assert EVENT_HEADERS | {"ce_schema_version"} == set(headers["properties"])


def test_dead_letter_channels_describe_their_headers() -> None:
    for topic in ALL_TOPICS:
        (message,) = GENERATED["channels"][topic.dlq]["messages"].values()
        body = deref(message)
        headers = deref(body["headers"])
        assert set(headers["properties"]) == DEAD_LETTER_HEADERS
        assert set(headers["required"]) == DEAD_LETTER_HEADERS
        assert body["contentType"] == "application/octet-stream"


def test_every_ref_resolves_inside_the_document() -> None:
    found = list(refs(DOC))
    assert found
    for ref in found:
        resolve(DOC, ref)
    assert not any("$defs" in ref for ref in found)


def test_component_schemas_are_the_json_schema_files() -> None:
    # Same generation as contracts.schema: only the refs' base and the file-level keywords differ.
    files = generate_schemas()
    schemas = DOC["components"]["schemas"]
    for entry in REGISTRY:
        expected = json.loads(
            json.dumps(files[entry.file_name]).replace('"#/$defs/', '"#/components/schemas/')
        )
        definitions = expected.pop("$defs", {})
        for keyword in ("$id", "$schema", "$comment"):
            expected.pop(keyword)
        assert schemas[asyncapi.schema_key(entry.name, entry.version)] == expected
        for name, definition in definitions.items():
            assert schemas[name] == definition


def test_document_structure() -> None:
    assert DOC["asyncapi"] == "3.0.0"
    assert isinstance(DOC["info"]["title"], str)
    assert isinstance(DOC["info"]["version"], str)
    assert DOC["defaultContentType"] == "application/json"
    allowed_top = {"asyncapi", "id", "info", "servers", "defaultContentType"}
    allowed_top |= {"channels", "operations", "components"}
    assert {k for k in DOC if not k.startswith("x-")} <= allowed_top
    for section in ("channels", "operations"):
        assert DOC[section]
        assert all(NAME.match(name) for name in DOC[section])
    for kind, items in DOC["components"].items():
        assert all(NAME.match(name) for name in items), kind
    for name, message in DOC["components"]["messages"].items():
        assert {"name", "payload", "contentType", "headers"} <= set(message), name
        assert deref(message["headers"]).get("type") == "object" or "allOf" in message["headers"]


def test_operations_reference_their_channel_and_its_messages() -> None:
    for op_id, operation in DOC["operations"].items():
        assert operation["action"] in {"send", "receive"}, op_id
        channel_ref = operation["channel"]["$ref"]
        assert channel_ref.startswith("#/channels/"), op_id
        channel = resolve(DOC, channel_ref)
        assert operation["messages"], op_id
        for message in operation["messages"]:
            ref = message["$ref"]
            # AsyncAPI 3.0: an operation's messages are a subset of its channel's.
            assert ref.startswith(channel_ref + "/messages/"), (op_id, ref)
            assert ref.removeprefix(channel_ref + "/messages/") in channel["messages"]


def _ops(action: str, channel: str) -> set[str]:
    return {
        op["x-cardflow-service"]
        for op in DOC["operations"].values()
        if op["action"] == action and op["channel"]["$ref"] == f"#/channels/{channel}"
    }


@pytest.mark.parametrize(
    ("service", "sends", "receives"),
    [
        (
            "gateway",
            {"cards.submitted", "analysis.requested", "epics.requested", "stories.requested"}
            | {"subtasks.requested"},
            {"runs.progress", "cards.analyzed", "epics.generated", "stories.generated"}
            | {"subtasks.generated"},
        ),
        (
            "analysis",
            {"cards.analyzed", "epics.requested", "runs.progress"},
            {"cards.submitted", "analysis.requested"},
        ),
        (
            "epics",
            {"epics.generated", "stories.requested", "runs.progress"},
            {"cards.analyzed", "epics.requested"},
        ),
        (
            "stories",
            {"stories.generated", "subtasks.requested", "runs.progress"},
            {"stories.requested"},
        ),
        ("subtasks", {"subtasks.generated", "runs.progress"}, {"subtasks.requested"}),
    ],
)
def test_who_sends_and_receives_what(service: str, sends: set[str], receives: set[str]) -> None:
    def full(short: set[str]) -> set[str]:
        return {f"cardflow.{name}.v1" for name in short}

    topic_names = {t.name for t in ALL_TOPICS}
    assert {t for t in topic_names if service in _ops("send", t)} == full(sends)
    assert {t for t in topic_names if service in _ops("receive", t)} == full(receives)
    # Whoever consumes a topic dead-letters to its twin; nobody else does.
    dead_letters = {t for t in DOC["channels"] if t.endswith(".dlq") and service in _ops("send", t)}
    assert dead_letters == {name + ".dlq" for name in full(receives)}


def test_every_received_topic_has_a_sender() -> None:
    for topic in ALL_TOPICS:
        if _ops("receive", topic.name):
            assert _ops("send", topic.name), topic.name

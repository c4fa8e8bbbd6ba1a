"""``cardflow dlq list|replay``: the operator's dead-letter commands.

Unlike the rest of the CLI they talk to Kafka directly, not to the gateway's tenant API: dead
letters belong to no tenant, and an operator needs them most when the gateway is what fails.
Where Kafka is comes from the services' own settings (``CARDFLOW_KAFKA_BOOTSTRAP_SERVERS``,
``CARDFLOW_KAFKA_TOPIC_PREFIX``). The work is ``records`` and ``kafka`` beside this module;
this one parses arguments and prints.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    # Imported when a dlq command runs (see run()): Kafka's and the runtime's modules take
    # a second to load, which every other `cardflow` command would pay for nothing.
    from services.runtime.dlq import kafka as dlq_kafka
    from services.runtime.dlq import records as dlq_records
    from services.runtime.settings import Settings

EXIT_OK = 0
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
MESSAGE_CHARS = 300


def add_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    """The ``dlq`` command group (``common``: the CLI's global options)."""
    group = commands.add_parser(
        "dlq",
        parents=[common],
        help="list and replay dead letters (talks to Kafka, not to the gateway)",
        description="Dead letters of every <topic>.dlq under CARDFLOW_KAFKA_TOPIC_PREFIX, on "
        "the Kafka of CARDFLOW_KAFKA_BOOTSTRAP_SERVERS. --url and --api-key do not apply.",
    )
    actions = group.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")

    listing = actions.add_parser(
        "list",
        parents=[common],
        help="every dead letter, why it failed, and whether it was replayed",
    )
    listing.add_argument(
        "--topic",
        action="append",
        default=[],
        metavar="TOPIC",
        help="only this topic's (the topic or its .dlq; repeatable)",
    )
    listing.add_argument("--waiting", action="store_true", help="only those not replayed yet")

    replaying = actions.add_parser(
        "replay",
        parents=[common],
        help="publish dead letters again to their original topic, each at most once",
        description="Publishes each selected dead letter's original message (value, key, "
        "headers) to its original topic and records it in cardflow.dlq.replayed.v1, so "
        "running the command again replays nothing twice. An id that matches no dead letter "
        "stops the command before anything is published.",
    )
    which = replaying.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--topic",
        action="append",
        metavar="TOPIC",
        help="every waiting dead letter of this topic (the topic or its .dlq; repeatable)",
    )
    which.add_argument(
        "--id",
        dest="ids",
        action="extend",
        nargs="+",
        metavar="EVENT_ID",
        help="the dead letters of these events (or dead-letter refs TOPIC.dlq:PARTITION:OFFSET, "
        "as `list` shows, for messages that are no envelope)",
    )
    replaying.add_argument(
        "--dry-run", action="store_true", help="show what would be replayed; publish nothing"
    )


def settings_from(env: Mapping[str, str]) -> Settings:
    """The services' settings; the Kafka variables of ``env`` win over the process's."""
    from services.runtime.settings import Settings

    # The Kafka settings under the names the services read them by (the settings' own).
    prefix = str(Settings.model_config.get("env_prefix", ""))
    names = {f: f"{prefix}{f.upper()}" for f in Settings.model_fields if f.startswith("kafka_")}
    overrides: dict[str, Any] = {field: env[var] for field, var in names.items() if var in env}
    return Settings(service_name="cardflow-dlq", **overrides)


def run(args: argparse.Namespace, env: Mapping[str, str], out: TextIO, err: TextIO) -> int:
    # aiokafka logs what it retries and what fails; the command says what went wrong itself.
    quiet = logging.getLogger("aiokafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        return _run(args, env, out, err)
    finally:
        quiet.setLevel(level)


def _run(args: argparse.Namespace, env: Mapping[str, str], out: TextIO, err: TextIO) -> int:
    from aiokafka.errors import InvalidProducerEpoch, KafkaError, ProducerFenced
    from pydantic import ValidationError

    from services.runtime.dlq import kafka as dlq_kafka

    try:
        settings = settings_from(env)
    except ValidationError as error:
        err.write(f"cardflow: bad Kafka settings: {error}\n")
        return EXIT_ERROR
    try:
        if args.dlq_command == "list":
            found = asyncio.run(dlq_kafka.read_dead_letters(settings, args.topic))
            lines = (
                [json.dumps(list_json(found, waiting_only=args.waiting), indent=2)]
                if args.json
                else list_lines(found, waiting_only=args.waiting)
            )
            _print(out, lines)
            return EXIT_OK
        result = asyncio.run(
            dlq_kafka.replay(
                settings, topics=args.topic or (), ids=args.ids or (), dry_run=args.dry_run
            )
        )
    except (ProducerFenced, InvalidProducerEpoch):
        err.write(
            "cardflow: another `cardflow dlq replay` started meanwhile and took over; this "
            "one's open transaction was aborted, so nothing is published twice. Run it again "
            "for what is left.\n"
        )
        return EXIT_ERROR
    except KeyboardInterrupt:
        # Nothing half done: a replay's transaction that did not commit is aborted.
        err.write("\ncardflow: interrupted\n")
        return EXIT_INTERRUPTED
    except (KafkaError, OSError, TimeoutError) as error:
        what = (
            str(error) if type(error).__name__ in str(error) else f"{type(error).__name__}: {error}"
        )
        err.write(f"cardflow: Kafka at {settings.kafka_bootstrap_servers}: {what}\n")
        return EXIT_ERROR
    if result.plan.unknown_ids:
        err.write(
            f"cardflow: no dead letter with id {', '.join(result.plan.unknown_ids)}; "
            "nothing was replayed (`cardflow dlq list` shows them)\n"
        )
        return EXIT_ERROR
    _print(out, [json.dumps(replay_json(result), indent=2)] if args.json else replay_lines(result))
    return EXIT_OK


def _print(out: TextIO, lines: Sequence[str]) -> None:
    out.write("".join(line + "\n" for line in lines))
    out.flush()


# ============================================================================================
# Pure: what is printed


def _one_line(text: str, limit: int = MESSAGE_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _where(topic: str, partition: int | None, offset: int | None) -> str:
    return (
        f"{topic} [{'?' if partition is None else partition}] @{'?' if offset is None else offset}"
    )


def letter_lines(letter: dlq_records.DeadLetterRecord) -> list[str]:
    if letter.replayed is None:
        state = "waiting"
    else:
        copy = letter.replayed
        state = f"replayed {copy.at} to {_where(copy.topic, copy.partition, copy.offset)}"
    attempts = "?" if letter.attempts is None else str(letter.attempts)
    origin = _where(letter.original_topic, letter.original_partition, letter.original_offset)
    lines = [
        f"{letter.ref}  {state}",
        f"  time     {letter.time}",
        f"  from     {origin}  consumer {letter.consumer or '?'}",
        f"  error    {letter.code} after {attempts} attempt(s): {_one_line(letter.message)}",
    ]
    if letter.event_id:
        lines.append(f"  event    {letter.event_id}  {letter.event_type}")
    else:
        lines.append(f"  value    {_one_line(repr(letter.value[:200]), 120)} (no envelope)")
    if letter.replay_of:
        lines.append(f"  replay of {letter.replay_of}")
    return lines


def _shown(
    found: dlq_records.DeadLetters, waiting_only: bool
) -> list[dlq_records.DeadLetterRecord]:
    return [letter for letter in found.letters if letter.waiting or not waiting_only]


def list_lines(found: dlq_records.DeadLetters, *, waiting_only: bool = False) -> list[str]:
    shown = _shown(found, waiting_only)
    lines: list[str] = []
    for letter in shown:
        lines += [*letter_lines(letter), ""]
    counts = {t: n for t, n in found.waiting_by_topic().items() if n}
    waiting = sum(counts.values())
    if not found.letters:
        lines.append(f"no dead letters ({len(found.topics)} .dlq topics read)")
        return lines
    lines.append(f"{len(found.letters)} dead letters, {waiting} waiting for replay")
    lines += [f"  {topic}: {count}" for topic, count in sorted(counts.items())]
    if waiting:
        lines.append("replay: cardflow dlq replay --topic TOPIC | --id EVENT_ID... [--dry-run]")
    return lines


def list_json(found: dlq_records.DeadLetters, *, waiting_only: bool = False) -> dict[str, Any]:
    counts = found.waiting_by_topic()
    return {
        "dead_letters": [letter.as_json() for letter in _shown(found, waiting_only)],
        "total": len(found.letters),
        "waiting_total": sum(counts.values()),
        "waiting": counts,
    }


def replay_lines(result: dlq_kafka.ReplayResult) -> list[str]:
    plan = result.plan
    lines: list[str] = []
    if not plan.groups:
        lines.append("nothing to replay: no waiting dead letter matches")
    elif result.dry_run:
        lines.append(f"would replay {len(plan.groups)} message(s); nothing was published:")
        for group in plan.groups:
            first = group[0]
            to = _where(first.original_topic, first.original_partition, None)
            lines.append(f"  {', '.join(g.ref for g in group)} -> {to}  {_what(first)}")
    else:
        lines.append(f"replayed {len(plan.groups)} message(s):")
        for group, copy in zip(plan.groups, result.replays, strict=True):
            to = _where(copy.topic, copy.partition, copy.offset)
            lines.append(f"  {', '.join(g.ref for g in group)} -> {to}  {_what(group[0])}")
    if plan.already_replayed:
        lines.append("already replayed (not again):")
        lines += [
            f"  {letter.ref} at {letter.replayed.at if letter.replayed else '?'}"
            for letter in plan.already_replayed
        ]
    return lines


def _what(letter: dlq_records.DeadLetterRecord) -> str:
    return f"event {letter.event_id}" if letter.event_id else "(no envelope)"


def replay_json(result: dlq_kafka.ReplayResult) -> dict[str, Any]:
    plan = result.plan
    copies: Sequence[dlq_records.Replay | None] = result.replays or [None] * len(plan.groups)
    return {
        "dry_run": result.dry_run,
        "messages": [
            {
                "refs": [letter.ref for letter in group],
                "event_id": group[0].event_id,
                "to": None
                if copy is None
                else {"topic": copy.topic, "partition": copy.partition, "offset": copy.offset},
            }
            for group, copy in zip(plan.groups, copies, strict=True)
        ],
        "already_replayed": [letter.ref for letter in plan.already_replayed],
    }

"""``cardflow``, the console script: which program answers which subcommand.

    cardflow dlq list|replay ...   ``services.runtime.dlq.command``: dead letters, read from
                                   and replayed to Kafka directly (they belong to no tenant,
                                   and an operator needs them most when the gateway is down)
    cardflow <any other command>   ``services.gateway.client``: a client of the gateway's
                                   HTTP API (run, status, runs, export, quality, ...)

The client may import nothing of the server or of the runtime (an import-linter contract in
pyproject.toml), so the two meet here, outside it: one parser, so ``cardflow --help`` lists
every command, and one dispatch. ``python -m services.gateway.cardflow`` is the same program.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from services.gateway.client import args as client_args
from services.gateway.client import main as client_main
from services.runtime.dlq import command as dlq_cli

if TYPE_CHECKING:
    import httpx

DLQ = "dlq"
"""The subcommand ``services.runtime.dlq.command`` adds and answers."""


def command_line(env: Mapping[str, str]) -> client_args.CommandLine:
    """The client's commands, and ``dlq`` beside them with the same global options."""
    line = client_args.command_line(env)
    dlq_cli.add_parser(line.commands, line.common)
    return line


def parse_args(argv: Sequence[str], env: Mapping[str, str]) -> argparse.Namespace:
    return command_line(env).parse(argv)


def main(
    argv: Sequence[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    transport: httpx.BaseTransport | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    cwd: Path | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Parse, then hand the command to the program that answers it; its exit code.
    ``transport``, ``cwd`` and ``sleep`` are the client's (tests: a fake gateway)."""
    env = dict(os.environ) if env is None else env
    out, err = stdout or sys.stdout, stderr or sys.stderr
    args = client_main.parse(command_line(env), sys.argv[1:] if argv is None else argv, err)
    if isinstance(args, int):
        return args
    if args.command == DLQ:  # Kafka, not the gateway: no URL, no key
        return dlq_cli.run(args, env, out, err)
    return client_main.run(
        args, env=env, stdout=out, stderr=err, transport=transport, cwd=cwd, sleep=sleep
    )


if __name__ == "__main__":
    sys.exit(main())

"""I/O: the client's half of ``cardflow``'s main: parse (``--help`` and usage errors become
exit codes), then run one command of the gateway's API: find the key, open the gateway,
run the command, and turn what went wrong into a message and an exit code.

The console script (``services.gateway.cardflow``) parses with this package's parser plus
the commands other programs answer, and hands the rest to :func:`run`.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TextIO

import httpx

from services.gateway.client.args import CommandLine, UsageError
from services.gateway.client.commands import COMMANDS
from services.gateway.client.console import Console
from services.gateway.client.context import Context
from services.gateway.client.exits import EXIT_ERROR, EXIT_INTERRUPTED
from services.gateway.client.follow import Detached
from services.gateway.client.http import ApiError, Gateway, Unreachable
from services.gateway.client.keyfile import enclosing_checkout, find_api_key
from services.gateway.client.messages import (
    cli_command,
    unauthorized_message,
    unreachable_message,
)


def parse(line: CommandLine, argv: Sequence[str], err: TextIO) -> argparse.Namespace | int:
    """The arguments, or the exit code when there is nothing to run: 0 after ``--help``, 2
    after a usage error (argparse has printed it; ours is printed here)."""
    try:
        return line.parse(argv)
    except SystemExit as exit_:  # argparse: --help (0) or a usage error (2)
        return int(exit_.code or 0) if isinstance(exit_.code, int | None) else EXIT_ERROR
    except UsageError as error:
        err.write(f"cardflow: {error}\n")
        return EXIT_ERROR


def run(
    args: argparse.Namespace,
    *,
    env: Mapping[str, str],
    stdout: TextIO,
    stderr: TextIO,
    transport: httpx.BaseTransport | None = None,
    cwd: Path | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """One parsed command of :data:`~services.gateway.client.commands.COMMANDS`."""
    here = cwd or Path.cwd()
    key = find_api_key(args.api_key, env, here, enclosing_checkout(here))
    console = Console.for_streams(stdout, stderr, env)
    gateway = Gateway(args.url, key.key, transport, sleep=sleep)
    ctx = Context(args, gateway, console, key, sleep=sleep)
    try:
        return COMMANDS[args.command](ctx)
    except UsageError as error:
        console.error(f"cardflow: {error}")
        return EXIT_ERROR
    except Unreachable as error:
        console.error(unreachable_message(error.url, error.error))
        return EXIT_ERROR
    except ApiError as error:
        if error.status == 401:
            console.error(unauthorized_message(key, error.detail))
        else:
            console.error(f"cardflow: {error.code}: {error.detail} (HTTP {error.status})")
        return EXIT_ERROR
    except Detached as detached:
        command = cli_command(args.url)
        console.error(f"\ndetached; the run goes on: {command} status {detached.run_id}")
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        console.error("\ncardflow: interrupted")
        return EXIT_INTERRUPTED
    finally:
        gateway.close()

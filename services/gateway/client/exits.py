"""What ``cardflow`` tells the shell: its exit codes, and which a finished run gets."""

from __future__ import annotations

from contracts.pipeline import RunStatus

EXIT_OK = 0
EXIT_RUN_NOT_SUCCEEDED = 1
EXIT_ERROR = 2
"""A usage error, an API error, no gateway or a refused key."""
EXIT_INTERRUPTED = 130
"""Ctrl-C (the run goes on: Ctrl-C only detaches)."""


def exit_code_for(status: str | None) -> int:
    """What a finished run's status means to a shell: 0 only for a full success (a script
    running `cardflow run && next-step` must not go on with half a backlog)."""
    return EXIT_OK if status == RunStatus.SUCCEEDED else EXIT_RUN_NOT_SUCCEEDED

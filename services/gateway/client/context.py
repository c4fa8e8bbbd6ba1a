"""What a command runs with: its arguments, the gateway, the terminal, where the key came
from, and the clock (injected, so tests follow a run without waiting)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

from services.gateway.client.console import Console
from services.gateway.client.http import Gateway
from services.gateway.client.keyfile import KeySource


@dataclass
class Context:
    args: argparse.Namespace
    gateway: Gateway
    console: Console
    key: KeySource
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

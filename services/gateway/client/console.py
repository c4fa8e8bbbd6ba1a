"""I/O: the terminal the client writes to (stdout for results, stderr for the rest) and
what it can show there (cursor movement, Unicode)."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TextIO

from services.gateway.client.live import use_live_view


@dataclass
class Console:
    out: TextIO
    err: TextIO
    live: bool
    width: int = 80

    @classmethod
    def for_streams(cls, out: TextIO, err: TextIO, env: Mapping[str, str]) -> Console:
        isatty = bool(getattr(out, "isatty", lambda: False)())
        width = shutil.get_terminal_size((100, 24)).columns if isatty else 100
        return cls(out, err, use_live_view(isatty, env.get("TERM")), width)

    @property
    def unicode(self) -> bool:
        encoding = (getattr(self.out, "encoding", None) or "").lower().replace("-", "")
        return encoding.startswith("utf")

    @property
    def arrow(self) -> str:
        return "→" if self.unicode else "->"

    def print(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def write(self, text: str) -> None:
        if text:
            self.out.write(text)
            self.out.flush()

    def error(self, text: str) -> None:
        self.err.write(text + "\n")
        self.err.flush()

"""The part of requirements.lock an image needs, hashes kept: ``python runtime_lock.py``.

``requirements.lock`` (``make lock``) pins the runtime dependencies and the ``dev`` extra
together (pytest, Playwright, mypy, testcontainers, ...). The image installs only what the
project's ``[project.dependencies]`` need, from the same pins and hashes, so it runs exactly
the versions the tests ran. Which pins those are is read from the lock itself: under each pin
``uv pip compile`` notes the packages that require it (``# via``), so a pin is needed when a
root or a needed pin requires it.

    python runtime_lock.py requirements.lock pyproject.toml           # the runtime's pins
    python runtime_lock.py --build requirements.lock pyproject.toml   # [build-system] pins

Standard library only: it runs in the image's build stage before anything is installed. The
image then installs with ``pip install --require-hashes --no-deps`` and checks the result
with ``pip check``, so a pin this leaves out fails the build instead of going unnoticed.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*")
_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==")
PROJECT_VIA = "(pyproject.toml)"


def normalize(name: str) -> str:
    """PEP 503's form of a distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    """``faststream[kafka]>=0.7`` -> ``faststream``."""
    match = _NAME.match(requirement.strip())
    if not match:
        raise ValueError(f"not a requirement: {requirement!r}")
    return normalize(match.group(0))


@dataclass
class Pin:
    name: str
    lines: list[str] = field(default_factory=list)
    required_by: set[str] = field(default_factory=set)
    """Normalised names of the pins that require this one (the project itself excluded)."""


def parse_lock(text: str) -> list[Pin]:
    """The pins of a ``uv pip compile --generate-hashes`` file, in order, with their ``via``."""
    pins: list[Pin] = []
    in_via = False
    for line in text.splitlines():
        pin = _PIN.match(line)
        if pin:
            pins.append(Pin(normalize(pin.group("name")), [line]))
            in_via = False
            continue
        if not pins or not line.startswith("    "):
            continue
        stripped = line.strip()
        if stripped.startswith("--hash="):
            pins[-1].lines.append(line)
        elif stripped == "# via":
            in_via = True
        elif stripped.startswith("# via "):
            _add_via(pins[-1], stripped.removeprefix("# via "))
            in_via = False
        elif in_via and stripped.startswith("#   "):
            _add_via(pins[-1], stripped.removeprefix("#   "))
    return pins


def _add_via(pin: Pin, via: str) -> None:
    if not via.endswith(PROJECT_VIA):
        pin.required_by.add(requirement_name(via))


def needed(pins: list[Pin], roots: set[str]) -> list[Pin]:
    """The pins of ``roots`` and of everything they require, transitively, in lock order."""
    by_name = {pin.name: pin for pin in pins}
    missing = sorted(roots - by_name.keys())
    if missing:
        raise ValueError(f"not in the lock: {', '.join(missing)} (run `make lock`)")
    chosen = set(roots)
    grew = True
    while grew:
        grew = False
        for pin in pins:
            if pin.name not in chosen and pin.required_by & chosen:
                chosen.add(pin.name)
                grew = True
    return [pin for pin in pins if pin.name in chosen]


def roots_of(pyproject: dict[str, Any], build: bool) -> set[str]:
    """The project's runtime dependencies, or with ``build`` its build-system requirements."""
    if build:
        requires: list[str] = pyproject["build-system"]["requires"]
    else:
        requires = pyproject["project"]["dependencies"]
    return {requirement_name(r) for r in requires}


def render(pins: list[Pin], command: str) -> str:
    lines = [
        f"# Generated from requirements.lock by {command}; do not edit.",
    ]
    for pin in pins:
        body = list(pin.lines)
        if body[-1].endswith(" \\"):
            body[-1] = body[-1].removesuffix(" \\")
        lines.extend(body)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lock", type=Path)
    parser.add_argument("pyproject", type=Path)
    parser.add_argument(
        "--build", action="store_true", help="the [build-system] requirements instead"
    )
    args = parser.parse_args(argv)
    pyproject = tomllib.loads(args.pyproject.read_text())
    pins = needed(parse_lock(args.lock.read_text()), roots_of(pyproject, args.build))
    what = "runtime_lock.py --build" if args.build else "runtime_lock.py"
    sys.stdout.write(render(pins, what))
    return 0


if __name__ == "__main__":
    sys.exit(main())

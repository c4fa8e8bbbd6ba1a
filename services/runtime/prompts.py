"""Versioned prompt templates kept as files beside each stage's logic.

A template file ``<name>.v<N>.md`` has a ``## system`` and a ``## user`` section; ``{field}``
placeholders are filled with ``str.format``-like substitution of exactly the names given.
Untrusted text (card titles and bodies) goes through ``fence`` before it is substituted, so
it cannot close the fence it sits in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_SECTION = re.compile(r"^## (system|user)\s*$", re.MULTILINE)
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


@dataclass(frozen=True, slots=True)
class PromptTemplate:
    version: str
    system: str
    user: str

    def render(self, **values: str) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": _fill(self.system, values)},
            {"role": "user", "content": _fill(self.user, values)},
        ]


def load_prompt(path: Path) -> PromptTemplate:
    text = path.read_text()
    parts = _SECTION.split(text)
    sections = dict(zip(parts[1::2], (p.strip() for p in parts[2::2]), strict=True))
    if set(sections) != {"system", "user"}:
        raise ValueError(f"{path.name}: needs exactly a '## system' and a '## user' section")
    return PromptTemplate(version=path.name.removesuffix(".md"), **sections)


def _fill(template: str, values: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"prompt placeholder {{{name}}} has no value")
        return values[name]

    return _PLACEHOLDER.sub(replace, template)


_CLOSING = re.compile(r"<\s*/", re.IGNORECASE)


def fence(label: str, text: str) -> str:
    """Wraps untrusted text in a labelled block it cannot break out of: every closing-tag
    opener inside (any label, any case, spaced or not) is escaped, so the text can end
    neither this fence nor any other one in the prompt."""
    safe = _CLOSING.sub("<\\/", text)
    return f"<{label}>\n{safe}\n</{label}>"

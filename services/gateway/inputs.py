"""The base of every request body's model: strict (unknown fields refused) and holding only
text a database can store. JSON can carry what Python's ``str`` holds but UTF-8 cannot (a
lone surrogate escape, ``"\\ud800"``) and a NUL, which PostgreSQL refuses in text: either is
answered 422 with the field's path, before anything is written, instead of a 500."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator


def unstorable(text: str) -> str | None:
    """Why ``text`` cannot be stored as text, or None. Linear, at C speed."""
    if "\x00" in text:
        return "holds a NUL character (U+0000), which is not text"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "holds a lone surrogate (\\ud800-\\udfff without its pair), which is not text"
    return None


def storable_file_name(name: str | None) -> str:
    """An uploaded file's name as it may be kept: no control characters (a NUL included)
    and nothing UTF-8 cannot encode."""
    text = (name or "").encode("utf-8", "replace").decode("utf-8")
    return "".join(c for c in text if c.isprintable())


def _check(value: Any) -> None:
    if isinstance(value, str):
        reason = unstorable(value)
        if reason is not None:
            raise ValueError(reason)
    elif isinstance(value, list | tuple):
        for member in value:
            _check(member)


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        _check(value)
        return value

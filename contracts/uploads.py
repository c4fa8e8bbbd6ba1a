"""What an uploaded file may be (``POST /v1/projects/{id}/uploads``), declared once for both
ends of the upload: the gateway reads a file by its format, the command line sends each file
with its content type, and the web page is told the extensions it may offer. Data and pure
lookups only.

A file's format comes from its extension; only a name without one falls back to the
content type it was sent with (a browser or a script may send any type, but a name is what
the user chose).
"""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType
from typing import Final


class UploadFormat(StrEnum):
    MARKDOWN = "markdown"
    TEXT = "text"
    CSV = "csv"
    JSON = "json"


CONTENT_TYPES: Final = MappingProxyType(
    {
        "text/markdown": UploadFormat.MARKDOWN,
        "text/x-markdown": UploadFormat.MARKDOWN,
        "text/plain": UploadFormat.TEXT,
        "text/csv": UploadFormat.CSV,
        "application/csv": UploadFormat.CSV,
        "text/tab-separated-values": UploadFormat.CSV,
        "application/json": UploadFormat.JSON,
    }
)
"""The content types a file without an extension is accepted as, and its format."""

EXTENSION_CONTENT_TYPES: Final = MappingProxyType(
    {
        ".md": "text/markdown",
        ".markdown": "text/markdown",
        ".txt": "text/plain",
        ".csv": "text/csv",
        ".tsv": "text/tab-separated-values",
        ".json": "application/json",
    }
)
"""Each accepted extension and the content type a client sends it as (in the order the
messages and the web page list them)."""

EXTENSIONS: Final = MappingProxyType(
    {ext: CONTENT_TYPES[media] for ext, media in EXTENSION_CONTENT_TYPES.items()}
)
"""Each accepted extension and the format it is read as (``.tsv``: CSV, tab first)."""

ACCEPTED_EXTENSIONS: Final[tuple[str, ...]] = tuple(EXTENSION_CONTENT_TYPES)

UNKNOWN_CONTENT_TYPE: Final = "application/octet-stream"


def extension_of(file_name: str | None) -> str:
    """The lower-cased extension of a file name or path, Windows' included (``""`` if none;
    a dot file such as ``.md`` has none): ``C:\\docs\\PRD.MD`` → ``.md``."""
    name = (file_name or "").strip().replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, ext = name.rpartition(".")
    return f".{ext.lower()}" if dot and stem else ""


def format_of(file_name: str | None, content_type: str | None) -> UploadFormat | None:
    """The format a file is read as: by its extension, else (no extension) by its content
    type; None when it is not accepted."""
    extension = extension_of(file_name)
    if extension:
        return EXTENSIONS.get(extension)
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return CONTENT_TYPES.get(media)


def content_type_of(file_name: str) -> str:
    """The content type to send a file as: its extension's, else ``application/octet-stream``
    (the gateway then refuses it by its extension and says which ones it takes)."""
    return EXTENSION_CONTENT_TYPES.get(extension_of(file_name), UNKNOWN_CONTENT_TYPE)

"""What every reader of uploaded files shares: limits, the card draft a reader returns, and
the refusal it raises (a problem+json :class:`Problem`). The formats and which file is which
are ``contracts.uploads``, shared with the command line.

A reader returns final :class:`CardDraft` bodies: every span in ``document`` indexes into
exactly that body, so nothing after a reader may change a body's text.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts.documents import DocumentContext
from contracts.uploads import (
    ACCEPTED_EXTENSIONS,
    CONTENT_TYPES,
    UploadFormat,
    extension_of,
    format_of,
)
from services.gateway.problems import Problem
from services.runtime.settings import Settings

TITLE_MAX_CHARS = 200
DERIVED_TITLE_CHARS = 80
EXTERNAL_ID_MAX_CHARS = 200

MB = 1024 * 1024


# Column (CSV) and key (JSON) names, compared after lower-casing and turning every run of


@dataclass(frozen=True, slots=True)
class UploadLimits:
    max_file_bytes: int = 5 * MB
    max_cards: int = 2000
    max_card_chars: int = 20_000

    @classmethod
    def from_settings(cls, settings: Settings) -> UploadLimits:
        """From ``services.runtime.settings.Settings`` (its ``upload_max_*`` fields)."""
        return cls(
            max_file_bytes=settings.upload_max_file_bytes,
            max_cards=settings.upload_max_cards,
            max_card_chars=settings.upload_max_card_chars,
        )


@dataclass(frozen=True, slots=True)
class CardDraft:
    title: str
    body: str
    external_id: str | None
    position: int
    """0-based order within the upload (``CardSubmitted.position``)."""
    document: DocumentContext | None = None
    """What the reader found in the card (``CardSubmitted.document``)."""
    where: str = ""
    """Where in the file it came from, for messages: "row 5", "item [3]", "line 12"."""


class UploadError(Problem):
    """A refused upload; ``code`` and ``status`` come from the problem registry."""


def detect_format(file_name: str | None, content_type: str | None) -> UploadFormat:
    """The format by extension, else by content type (for a name with no extension): the
    lookup is :func:`contracts.uploads.format_of`, shared with the command line; this adds
    the refusal."""
    fmt = format_of(file_name, content_type)
    if fmt is not None:
        return fmt
    extension = extension_of(file_name)
    accepted = ", ".join(ACCEPTED_EXTENSIONS)
    if extension:
        detail = f"'{extension}' files are not accepted; upload one of {accepted}."
    else:
        detail = (
            "The file has no extension and its content type is not one of "
            f"{', '.join(CONTENT_TYPES)}; upload one of {accepted}."
        )
    raise UploadError("unsupported_media_type", detail, accepted=list(ACCEPTED_EXTENSIONS))


def check_file_size(size: int, limits: UploadLimits) -> None:
    """Raise ``upload_too_large`` when ``size`` bytes exceed the limit; a route reading the
    file in chunks calls it with the running total to stop early."""
    if size > limits.max_file_bytes:
        raise UploadError(
            "upload_too_large",
            f"The file is larger than the limit of {_size(limits.max_file_bytes)} per upload.",
            limit=limits.max_file_bytes,
        )


def _size(limit: int) -> str:
    """5242880 → "5 MB (5242880 bytes)"; 1536 → "1.5 KB (1536 bytes)"; 100 → "100 bytes"."""
    if limit >= MB:
        human = f"{round(limit / MB, 1):g} MB"
    elif limit >= 1024:
        human = f"{round(limit / 1024, 1):g} KB"
    else:
        return f"{limit} bytes"
    return f"{human} ({limit} bytes)"

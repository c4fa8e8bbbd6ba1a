"""Bytes into text: the encoding is read from the bytes, never from a declared charset.

A UTF-16 BOM means UTF-16; otherwise UTF-8 (with or without BOM). A file that fails as UTF-8
but holds no valid multi-byte UTF-8 sequence at all was written in a legacy single-byte
encoding: ``.csv``/``.tsv``/``.txt`` are then read as Windows-1252 (what Excel and Notepad
write on Windows). A file that does hold valid multi-byte sequences is UTF-8 with a few
broken bytes: reading it as Windows-1252 would turn every accented letter into mojibake, so it
is refused (422 ``unreadable_file``) naming the first bad byte's offset and line. Markdown and
JSON are UTF-8 only (RFC 8259; every Markdown tool writes UTF-8).

A NUL byte (outside UTF-16), a known binary signature (PDF, ZIP such as .docx/.xlsx, images,
gzip) or more than 1 % control characters make the file ``unreadable_file`` (415).
"""

from __future__ import annotations

from services.gateway.ingest.model import ACCEPTED_EXTENSIONS, UploadError, UploadFormat
from services.gateway.ingest.normalise import _BAD_CONTROL

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (such as .docx, .xlsx or .odt)"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\xd0\xcf\x11\xe0", "a legacy Office document (.doc, .xls)"),
)
_MAX_CONTROL_SHARE = 0.01
_CONTROL_ALLOWANCE = 8
"""A few stray control characters (a DOS end-of-file mark, a pasted bell) are dropped."""

_REPLACEMENT = "\ufffd"
_REPLACEMENT_UTF8 = _REPLACEMENT.encode("utf-8")
_LEGACY_FORMATS = (UploadFormat.CSV, UploadFormat.TEXT)


def _unreadable(detail: str) -> UploadError:
    return UploadError("unreadable_file", detail)


def decode(data: bytes, fmt: UploadFormat) -> str:
    """The file's text, or ``unreadable_file`` (see the module's docstring for the rules)."""
    for signature, what in _SIGNATURES:
        if data.startswith(signature):
            raise _unreadable(
                f"The file is {what}, not text; export it as "
                f"{', '.join(ACCEPTED_EXTENSIONS)} and upload that."
            )
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise _unreadable("The file starts like UTF-16 text but is not valid UTF-16.") from None
    elif b"\x00" in data:
        raise _unreadable("The file contains NUL bytes: it is binary, not text.")
    else:
        text = _decode_8bit(data, fmt)
    text = text.lstrip("\ufeff")
    bad = len(_BAD_CONTROL.findall(text))
    if bad > _CONTROL_ALLOWANCE and bad > _MAX_CONTROL_SHARE * len(text):
        raise _unreadable(
            f"The file has {bad} control characters in {len(text)}: it is binary, not text."
        )
    return text


def _decode_8bit(data: bytes, fmt: UploadFormat) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        first_bad = error.start + (3 if data.startswith(b"\xef\xbb\xbf") else 0)
    # One more linear pass tells broken UTF-8 from a legacy encoding: with errors="replace"
    # every invalid sequence becomes U+FFFD and every valid multi-byte one a non-ASCII letter.
    replaced = data.decode("utf-8-sig", errors="replace")
    genuine_replacements = data.count(_REPLACEMENT_UTF8)
    invalid = replaced.count(_REPLACEMENT) - genuine_replacements
    multibyte = sum(1 for char in replaced if char > "\x7f") - invalid
    if multibyte > 0:
        line = data.count(b"\n", 0, first_bad) + 1
        raise UploadError(
            "unreadable_file",
            f"The file is UTF-8 with {invalid} invalid byte sequence"
            f"{'' if invalid == 1 else 's'}, the first at byte offset {first_bad} (line {line}); "
            "it is not read as Windows-1252, which would garble its other accented letters. "
            "Fix or remove those bytes and save the file as UTF-8.",
            status=422,
            offset=first_bad,
            line=line,
            invalid_sequences=invalid,
        )
    if fmt in _LEGACY_FORMATS:
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError as legacy:
            raise _unreadable(
                "The file is not valid UTF-8, UTF-16 or Windows-1252 text "
                f"(undecodable byte at offset {legacy.start})."
            ) from None
    raise UploadError(
        "unreadable_file",
        f"The file is not valid UTF-8 text (undecodable byte at offset {first_bad}).",
        offset=first_bad,
    )

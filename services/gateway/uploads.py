"""Split an uploaded file into cards (``POST /v1/projects/{id}/uploads``). Pure: bytes in,
:class:`CardDraft` list out, or an :class:`UploadError` (a problem+json :class:`Problem`).

All or nothing: :func:`split_upload` returns every card or raises; the route must split the
whole file before it stores or publishes anything.

**Format** comes from the file name's extension (``.md``/``.markdown``, ``.txt``,
``.csv``/``.tsv``, ``.json``); only a name without any extension falls back to the declared
content type (``text/markdown``, ``text/plain``, ``text/csv``, ``application/json``). A name
with another extension is refused even when the content type looks textual.

**Encoding** is read from the bytes, never from a declared charset: a UTF-16 BOM, else UTF-8
(with or without BOM); ``.csv``/``.tsv``/``.txt`` then fall back to Windows-1252, which is
what Excel and Notepad write on Windows. Markdown and JSON are UTF-8 only (RFC 8259; every
Markdown tool writes UTF-8). A NUL byte (outside UTF-16), a known binary signature (PDF, ZIP
such as .docx/.xlsx, images, gzip) or more than 1 % control characters make the file
``unreadable_file`` (a few stray ones are dropped).

**Text** is normalised: NFC, CRLF/CR → LF, control characters except tab and newline dropped,
trailing spaces cut, runs of blank lines cut to one. Titles are one line of single spaces.

**Markdown**: when the file has headings, the card level is the shallowest heading level used
at least twice (else the deepest level used). Each heading at that level starts a card titled
by its text; deeper headings, paragraphs and bullets stay in its body. Text under a
shallower heading (a document title, an intro) or before the first heading becomes a card of
its own only when it has text, titled by that heading. A file without headings that is only a
bullet list gives a card per top-level bullet; any other file without headings is read like
``.txt``. Fenced code and YAML front matter are never split.

**Text**: a card per paragraph (blocks separated by blank lines); a paragraph ending with
``:`` keeps the next one, and so does a lone heading-like line (unless the next is one too).
A first line that reads as a heading (up to 80 characters, no closing punctuation, the next
line not going on in lower case) is the title and the rest the body; otherwise the title is
the first sentence, cut to 80 characters, and the body is the whole paragraph.

**CSV**: the first row is the header; the delimiter (``,`` ``;`` tab ``|``) is the one whose
header names the most known columns. Title, body and id columns are found by name,
case-insensitively (see :data:`TITLE_COLUMNS`, :data:`BODY_COLUMNS`, :data:`ID_COLUMNS`); a
file with neither a title nor a body column is ``input_invalid``. Other columns are ignored.

**JSON**: an array of cards, or ``{"cards": [...]}``; a card is an object with the same keys
as CSV columns, or a plain string (its body).

**Titles**: a card without a title gets one from its body (first sentence, up to 80
characters); a card with neither is skipped (a blank CSV row, an empty object), and a file
that leaves no card is ``no_cards``. A title longer than 200 characters is cut at a word and
the full title kept as the body's first paragraph, so no text is lost.

**Ids**: ``external_id`` (up to 200 characters) must be unique within the upload.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from services.gateway.ingest.model import (  # noqa: F401  (re-exported until the readers move)
    ACCEPTED_EXTENSIONS,
    CONTENT_TYPES,
    DERIVED_TITLE_CHARS,
    EXTENSIONS,
    EXTERNAL_ID_MAX_CHARS,
    MB,
    TITLE_MAX_CHARS,
    CardDraft,
    UploadError,
    UploadFormat,
    UploadLimits,
    _size,
    check_file_size,
    detect_format,
)
from services.gateway.ingest.normalise import (  # noqa: F401
    _BAD_CONTROL,
    _HEADING_MARKER,
    _LIST_MARKER,
    _SENTENCE_END,
    _normalise_newlines,
    clean_body,
    clean_title,
    derive_title,
    plain_title,
    shorten,
)

# other characters into "_"; the first listed name present wins.
TITLE_COLUMNS = ("title", "name", "summary", "subject", "heading", "card_name", "card_title")
BODY_COLUMNS = (
    "body",
    "description",
    "details",
    "detail",
    "text",
    "content",
    "desc",
    "card_description",
    "notes",
)
ID_COLUMNS = ("external_id", "externalid", "id", "key", "issue_key", "card_id", "ref")


def split_upload(
    file_name: str | None,
    content_type: str | None,
    data: bytes,
    limits: UploadLimits | None = None,
) -> list[CardDraft]:
    """Every card of the file, in order, or an :class:`UploadError`."""
    limits = limits or UploadLimits()
    check_file_size(len(data), limits)
    fmt = detect_format(file_name, content_type)
    text = decode(data, fmt)
    if fmt is UploadFormat.CSV:
        tab_first = (file_name or "").lower().endswith(".tsv")
        raw = _csv_cards(text, tab_first=tab_first, max_card_chars=limits.max_card_chars)
    elif fmt is UploadFormat.JSON:
        raw = _json_cards(text)
    elif fmt is UploadFormat.MARKDOWN:
        raw = _markdown_cards(text)
    else:
        raw = _text_cards(text)
    return _finish(raw, limits)


# --- decoding -------------------------------------------------------------------------------

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
# C0 controls but tab, newlines, vertical tab and form feed; DEL; C1 controls.
_MAX_CONTROL_SHARE = 0.01
_CONTROL_ALLOWANCE = 8
"""A few stray control characters (a DOS end-of-file mark, a pasted bell) are dropped."""


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
    text: str | None = None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise _unreadable("The file starts like UTF-16 text but is not valid UTF-16.") from None
    elif b"\x00" in data:
        raise _unreadable("The file contains NUL bytes: it is binary, not text.")
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            if fmt in (UploadFormat.CSV, UploadFormat.TEXT):
                try:
                    text = data.decode("cp1252")
                except UnicodeDecodeError:
                    text = None
            if text is None:
                accepted = (
                    "UTF-8, UTF-16 or Windows-1252"
                    if fmt in (UploadFormat.CSV, UploadFormat.TEXT)
                    else "UTF-8"
                )
                raise _unreadable(
                    f"The file is not valid {accepted} text "
                    f"(undecodable byte at offset {error.start})."
                ) from None
    text = text.lstrip("\ufeff")
    bad = len(_BAD_CONTROL.findall(text))
    if bad > _CONTROL_ALLOWANCE and bad > _MAX_CONTROL_SHARE * len(text):
        raise _unreadable(
            f"The file has {bad} control characters in {len(text)}: it is binary, not text."
        )
    return text


# --- raw cards ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Raw:
    title: str
    body: str
    external_id: str | None
    where: str
    """Where it came from, for messages: "line 12", "row 5", "item [3]"."""
    markdown: bool = False
    """Title and body are Markdown: marks are taken out of titles."""


def _finish(raw: Iterable[_Raw], limits: UploadLimits) -> list[CardDraft]:
    cards: list[CardDraft] = []
    seen_ids: dict[str, str] = {}
    for item in raw:
        body = clean_body(item.body)
        title = plain_title(item.title) if item.markdown else clean_title(item.title)
        if not title and not body:
            continue
        if not title:
            title = (
                derive_title(body, markdown=item.markdown)
                or shorten(clean_title(body), DERIVED_TITLE_CHARS)
                or f"Card {len(cards) + 1}"
            )
        elif len(title) > TITLE_MAX_CHARS:
            full = title
            title = shorten(full, TITLE_MAX_CHARS)
            if not body.startswith(full):
                body = f"{full}\n\n{body}" if body else full
        external_id = clean_title(item.external_id) if item.external_id is not None else None
        if external_id == "":
            external_id = None
        if external_id is not None:
            if len(external_id) > EXTERNAL_ID_MAX_CHARS:
                raise UploadError(
                    "input_invalid",
                    f"The external id of the card at {item.where} is longer than "
                    f"{EXTERNAL_ID_MAX_CHARS} characters.",
                )
            if external_id in seen_ids:
                raise UploadError(
                    "input_invalid",
                    f"External id {external_id!r} is used twice ({seen_ids[external_id]} and "
                    f"{item.where}); ids must be unique within an upload.",
                )
            seen_ids[external_id] = item.where
        position = len(cards)
        if position >= limits.max_cards:
            raise UploadError(
                "too_many_cards",
                f"The file has more than {limits.max_cards} cards, the limit per upload; "
                "split it into several uploads.",
                limit=limits.max_cards,
            )
        length = len(title) + len(body)
        if length > limits.max_card_chars:
            raise UploadError(
                "card_too_long",
                f"Card {position + 1} ({item.where}, {shorten(title, 60)!r}) has {length} "
                f"characters; the limit is {limits.max_card_chars} per card. Split it.",
                limit=limits.max_card_chars,
                position=position,
                card_title=title,
                length=length,
            )
        cards.append(CardDraft(title, body, external_id, position))
    if not cards:
        raise UploadError("no_cards", "The file holds no cards: it is empty or only blank.")
    return cards


# --- text -----------------------------------------------------------------------------------

_CLOSING_PUNCTUATION = tuple(".!?,;:")


def _raw_blocks(
    lines: list[str], first_line: int, *, fences: bool
) -> Iterator[tuple[int, list[str]]]:
    """Runs of non-blank lines with the 1-based number of their first line; with ``fences``,
    a blank line inside fenced code does not end a run."""
    block: list[str] = []
    start = 0
    fence: str | None = None
    for number, line in enumerate(lines, start=first_line):
        if fences and line.lstrip(" ")[:1] in ("`", "~"):
            match = _FENCE.match(line)
            if match and fence is None:
                fence = match[1]
            elif match and fence and match[1][0] == fence[0] and len(match[1]) >= len(fence):
                fence = None
        if line.strip() or fence is not None:
            if not block:
                start = number
            block.append(line)
        elif block:
            yield start, block
            block = []
    if block:
        yield start, block


def _heading_like(block: list[str]) -> bool:
    """A lone short line without closing punctuation: it heads what follows."""
    if len(block) != 1:
        return False
    line = block[0].strip()
    return (
        len(line) <= DERIVED_TITLE_CHARS
        and not line.endswith(_CLOSING_PUNCTUATION)
        and any(char.isalnum() for char in line)
        and not _LIST_MARKER.match(line)
        and not _FENCE.match(line)
    )


def _blocks(
    lines: list[str], first_line: int = 1, *, fences: bool = False
) -> Iterator[tuple[int, list[str]]]:
    """Paragraphs with their 1-based line numbers. A paragraph ending with ':' is joined to
    the next one, and so is a lone heading-like line (unless the next is one too)."""
    current: tuple[int, list[str]] | None = None
    for start, block in _raw_blocks(lines, first_line, fences=fences):
        if current is not None:
            opens = current[1][-1].rstrip().endswith(":")
            if opens or (_heading_like(current[1]) and not _heading_like(block)):
                current[1].extend(["", *block])
                continue
            yield current
        current = (start, block)
    if current is not None:
        yield current


def _paragraph_card(start: int, block: list[str], *, markdown: bool) -> _Raw:
    """Title and body of a paragraph: a first line that reads as a heading (short, no closing
    punctuation, not a bullet or fence, the next line not going on in lower case) is the
    title and the rest the body; otherwise the title is derived and the body is the whole
    paragraph."""
    first = block[0].strip()
    following = next((line.strip() for line in block[1:] if line.strip()), "")
    if (
        following
        and len(first) <= DERIVED_TITLE_CHARS
        and not first.endswith(_CLOSING_PUNCTUATION[:-1])
        and any(char.isalnum() for char in first)
        and not _LIST_MARKER.match(block[0])
        and not _FENCE.match(block[0])
        and not following[0].islower()
    ):
        return _Raw(first.rstrip(":"), "\n".join(block[1:]), None, f"line {start}", markdown)
    return _Raw("", "\n".join(block), None, f"line {start}", markdown)


def _text_cards(text: str) -> Iterator[_Raw]:
    lines = _normalise_newlines(text).split("\n")
    for start, block in _blocks(lines):
        yield _paragraph_card(start, block, markdown=False)


# --- markdown -------------------------------------------------------------------------------

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-{2,})[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_TOP_BULLET = re.compile(r"^ {0,3}(?:[-*+]|\d{1,9}[.)])(?:[ \t]+|$)")
_FRONT_MATTER_END = re.compile(r"^(?:---|\.\.\.)[ \t]*$")
_BULLET_START = frozenset("-*+0123456789")


@dataclass(slots=True)
class _MarkdownScan:
    """The file's lines (after front matter) with their headings found, outside code."""

    lines: list[str]
    first_line: int
    """1-based line number of ``lines[0]`` in the file."""
    headings: dict[int, int]
    """Index in ``lines`` → heading level, in line order."""
    underlines: set[int]
    """Indexes of setext underlines: part of their heading, not of any body."""


def _front_matter_lines(lines: list[str]) -> int:
    """How many lines of YAML front matter open the file (0 when none)."""
    if not lines or lines[0].strip() != "---":
        return 0
    for index in range(1, min(len(lines), 200)):
        if _FRONT_MATTER_END.match(lines[index]):
            return index + 1
    return 0


def _scan_markdown(text: str) -> _MarkdownScan:
    """ATX and one-line setext headings, outside fenced code; one pass, regexes only on the
    few lines whose first character could open a heading or a fence."""
    all_lines = _normalise_newlines(text).split("\n")
    skip = _front_matter_lines(all_lines)
    lines = all_lines[skip:]
    headings: dict[int, int] = {}
    underlines: set[int] = set()
    fence: str | None = None
    for index, line in enumerate(lines):
        stripped = line.lstrip(" ")
        lead = stripped[:1]
        if lead not in ("#", "`", "~", "=", "-"):
            continue
        if lead in ("=", "-") and (fence is not None or stripped.rstrip().strip(lead)):
            continue  # not an underline (cheap test before the regex)
        fence_match = _FENCE.match(line) if lead in ("`", "~") else None
        if fence is not None:
            if fence_match and fence_match[1][0] == fence[0] and len(fence_match[1]) >= len(fence):
                fence = None
            continue
        if fence_match:
            fence = fence_match[1]
            continue
        if lead == "#":
            level = _atx_level(line)
            if level:
                headings[index] = level
        elif _SETEXT.match(line) and _is_setext_text(lines, headings, index - 1):
            headings[index - 1] = 1 if lead == "=" else 2
            underlines.add(index)
    return _MarkdownScan(lines, skip + 1, headings, underlines)


def _atx_level(line: str) -> int:
    """The level of an ATX heading line ("## Title"), 0 when it is not one."""
    stripped = line.lstrip(" ")
    if len(line) - len(stripped) > 3:
        return 0
    hashes = len(stripped) - len(stripped.lstrip("#"))
    if 1 <= hashes <= 6 and (len(stripped) == hashes or stripped[hashes] in " \t"):
        return hashes
    return 0


def _heading_text(scan: _MarkdownScan, index: int) -> str:
    if index + 1 in scan.underlines:
        return scan.lines[index].strip()
    atx = _ATX.match(scan.lines[index])
    return (atx[2] or "") if atx else ""


def _is_setext_text(lines: list[str], headings: dict[int, int], index: int) -> bool:
    """``lines[index]`` is a lone paragraph line: text after a blank line, heading or start."""
    if index < 0 or index in headings:
        return False
    text = lines[index]
    if not text.strip() or text.startswith((" ", "\t")):
        return False
    if _TOP_BULLET.match(text) or _FENCE.match(text):
        return False
    return index == 0 or index - 1 in headings or not lines[index - 1].strip()


def _markdown_cards(text: str) -> Iterator[_Raw]:
    scan = _scan_markdown(text)
    if not scan.headings:
        items = _bullet_items(scan)
        if items is not None:
            yield from items
        else:
            for start, block in _blocks(scan.lines, scan.first_line, fences=True):
                yield _paragraph_card(start, block, markdown=True)
        return
    used = Counter(scan.headings.values())
    repeated = [level for level, count in used.items() if count > 1]
    card_level = min(repeated) if repeated else max(used)

    # A section starts at every heading of card_level or shallower (and at the file's start).
    starts = [i for i, level in scan.headings.items() if level <= card_level]
    for number, start in enumerate([-1, *starts]):
        end = starts[number] if number < len(starts) else len(scan.lines)
        body = "\n".join(scan.lines[i] for i in range(start + 1, end) if i not in scan.underlines)
        is_card = start >= 0 and scan.headings[start] == card_level
        if is_card or body.strip():
            title = _heading_text(scan, start) if start >= 0 else ""
            where = f"line {scan.first_line + max(start, 0)}"
            yield _Raw(title, body, None, where, markdown=True)


def _bullet_items(scan: _MarkdownScan) -> Iterator[_Raw] | None:
    """A card per top-level bullet when the file is only a bullet list, else None.

    Nested bullets, indented and lazy continuation lines and indented code fences belong to
    the bullet above them; any other line (a paragraph after a blank line) means "not a
    list"."""
    starts: list[int] = []
    previous_blank = True
    in_fence = False
    for index, text in enumerate(scan.lines):
        content = text.lstrip(" \t")
        if not content.strip():
            previous_blank = True
            continue
        indent = len(text) - len(content)
        lead = content[0]
        fence = lead in ("`", "~") and _FENCE.match(text)
        if starts and (in_fence or fence):
            if fence:
                in_fence = not in_fence
        elif indent < 2 and (
            (lead in "-*+" and content[1:2] in ("", " ", "\t"))
            or (lead.isdigit() and _TOP_BULLET.match(text))
        ):
            starts.append(index)
        elif not starts or (indent == 0 and previous_blank):
            return None
        previous_blank = False
    if not starts:
        return None
    return _bullet_cards(scan, starts)


def _bullet_cards(scan: _MarkdownScan, starts: list[int]) -> Iterator[_Raw]:
    ends = [*starts[1:], len(scan.lines)]
    for start, end in zip(starts, ends, strict=True):
        first = _LIST_MARKER.sub("", scan.lines[start], count=1)
        rest = scan.lines[start + 1 : end]
        indents = [len(line) - len(line.lstrip()) for line in rest if line.strip()]
        cut = min(indents, default=0)
        body = "\n".join([first, *(line[cut:] for line in rest)])
        where = f"line {scan.first_line + start}"
        yield _Raw(_bullet_title(first), body, None, where, markdown=True)


_BOLD_LEAD = re.compile(r"^(?:\*\*|__)(.+?)(?:\*\*|__)\s*(?:[:.\-\u2013\u2014]\s*)?")


def _bullet_title(first_line: str) -> str:
    """A bullet "**Login**: users sign in" is titled "Login"; others get a derived title."""
    lead = _BOLD_LEAD.match(first_line.strip())
    if lead and lead[1].strip():
        return shorten(plain_title(lead[1]), DERIVED_TITLE_CHARS)
    return ""


# --- CSV ------------------------------------------------------------------------------------

_NOT_NAME = re.compile(r"[^0-9a-z]+")
_DELIMITERS = (",", ";", "\t", "|")
_LEADING_BLANK_LINES = re.compile(r"\A(?:[ \t]*\n)+")


def column_key(name: str) -> str:
    """How column and JSON key names are compared: "Issue Key" → "issue_key"."""
    return _NOT_NAME.sub("_", name.strip().lower()).strip("_")


def _pick(keys: list[str], wanted: tuple[str, ...]) -> int | None:
    for name in wanted:
        if name in keys:
            return keys.index(name)
    return None


def _roles(header: list[str]) -> tuple[int | None, int | None, int | None]:
    keys = [column_key(name) for name in header]
    return _pick(keys, TITLE_COLUMNS), _pick(keys, BODY_COLUMNS), _pick(keys, ID_COLUMNS)


def _header_row(text: str, delimiter: str) -> list[str]:
    try:
        return next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
    except csv.Error:
        return []


def _csv_cards(text: str, *, tab_first: bool, max_card_chars: int) -> Iterator[_Raw]:
    text = _LEADING_BLANK_LINES.sub("", _normalise_newlines(text))
    if not text.strip():
        return
    order = ("\t", ",", ";", "|") if tab_first else _DELIMITERS
    best: tuple[int, str] = (-1, order[0])
    for delimiter in order:
        found = sum(role is not None for role in _roles(_header_row(text, delimiter)))
        if found > best[0]:
            best = (found, delimiter)
    delimiter = best[1]
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, strict=False)
    try:
        header = next(reader)
    except csv.Error as error:
        raise UploadError("input_invalid", f"The CSV header cannot be read: {error}.") from None
    title_at, body_at, id_at = _roles(header)
    if title_at is None and body_at is None:
        shown = ", ".join(repr(name.strip()) for name in header[:12]) or "(none)"
        raise UploadError(
            "input_invalid",
            f"No title or body column in the CSV header (columns: {shown}). Name a column "
            f"one of {', '.join(TITLE_COLUMNS)} for titles or {', '.join(BODY_COLUMNS)} "
            "for text.",
            columns=[name.strip() for name in header],
        )
    row_number = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            if "field larger than field limit" in str(error):
                # The csv module's own cap (131072 characters), far above a card's limit.
                raise UploadError(
                    "card_too_long",
                    f"CSV row {row_number + 1} has a cell longer than {csv.field_size_limit()} "
                    f"characters; the limit is {max_card_chars} per card. Split it.",
                    limit=max_card_chars,
                ) from None
            raise UploadError(
                "input_invalid", f"CSV row {row_number + 1} cannot be read: {error}."
            ) from None
        row_number += 1

        def cell(index: int | None, row: list[str] = row) -> str:
            return row[index] if index is not None and index < len(row) else ""

        external_id = cell(id_at) if id_at is not None else None
        yield _Raw(cell(title_at), cell(body_at), external_id, f"row {row_number}")


# --- JSON -----------------------------------------------------------------------------------


def _json_cards(text: str) -> Iterator[_Raw]:
    if not text.strip():
        return
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise UploadError(
            "input_invalid",
            f"The file is not valid JSON: {error.msg} at line {error.lineno}, "
            f"column {error.colno}.",
        ) from None
    except (ValueError, RecursionError) as error:
        raise UploadError("input_invalid", f"The JSON cannot be read: {error}.") from None
    if isinstance(document, dict) and "cards" in document:
        items, prefix = document["cards"], "cards"
    else:
        items, prefix = document, ""
    if not isinstance(items, list):
        raise UploadError(
            "input_invalid",
            'Expected a JSON array of cards or an object {"cards": [...]}; '
            f"got {_json_kind(items)}.",
        )
    for index, item in enumerate(items):
        where = f"item {prefix}[{index}]"
        if isinstance(item, str):
            yield _Raw("", item, None, where)
            continue
        if not isinstance(item, dict):
            raise UploadError(
                "input_invalid",
                f"JSON {where} is {_json_kind(item)}; a card is an object with a title "
                "and a body, or a string.",
            )
        keys = {column_key(str(key)): value for key, value in reversed(item.items())}
        yield _Raw(
            _json_field(keys, TITLE_COLUMNS, where, "title") or "",
            _json_field(keys, BODY_COLUMNS, where, "body") or "",
            _json_field(keys, ID_COLUMNS, where, "external_id"),
            where,
        )


def _json_field(keys: dict[str, Any], names: tuple[str, ...], where: str, role: str) -> str | None:
    for name in names:
        if name in keys:
            value = keys[name]
            if value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise UploadError(
                    "input_invalid",
                    f"JSON {where}: {name!r} is {_json_kind(value)}; the {role} must be a string.",
                )
            return str(value)
    return None


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"

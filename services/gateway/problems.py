"""Errors of the HTTP API as problem details (RFC 9457, ``application/problem+json``).

Pure: no FastAPI here (``problem_handlers`` turns these into responses). Every error a client
can see has a stable ``code`` from :data:`PROBLEMS`; the body's ``type`` is
``https://cardflow.dev/problems/<code>``, so clients may switch on either. A ``304 Not
Modified`` is not a problem: it is a normal answer to ``If-None-Match``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://cardflow.dev/problems/"

# Members of the body that RFC 9457 defines or that cardflow always sets; extras may not shadow.
_RESERVED = frozenset({"type", "title", "status", "detail", "instance", "code"})


@dataclass(frozen=True, slots=True)
class ProblemSpec:
    """One stable error code: its default HTTP status and its short, fixed title."""

    code: str
    status: int
    title: str


def _registry(*specs: ProblemSpec) -> dict[str, ProblemSpec]:
    return {spec.code: spec for spec in specs}


PROBLEMS: Mapping[str, ProblemSpec] = _registry(
    # generic HTTP
    ProblemSpec("bad_request", 400, "Bad request"),
    ProblemSpec("unauthorized", 401, "Missing or invalid API key"),
    ProblemSpec("forbidden", 403, "Not allowed"),
    ProblemSpec("not_found", 404, "Not found"),
    ProblemSpec("method_not_allowed", 405, "Method not allowed"),
    ProblemSpec("not_acceptable", 406, "Not acceptable"),
    ProblemSpec("conflict", 409, "Conflict"),
    # draft-ietf-httpapi-idempotency-key-header: a key still being processed answers 409,
    # a key reused with a different request answers 422.
    ProblemSpec("idempotency_in_progress", 409, "A request with this Idempotency-Key is running"),
    ProblemSpec("idempotency_conflict", 422, "Idempotency-Key reused with a different request"),
    ProblemSpec("request_too_large", 413, "Request too large"),
    ProblemSpec("validation_failed", 422, "The request is invalid"),
    ProblemSpec("rate_limited", 429, "Too many requests"),
    # uploads (services.gateway.ingest)
    ProblemSpec("upload_too_large", 413, "File too large"),
    ProblemSpec("too_many_cards", 413, "Too many cards"),
    ProblemSpec("card_too_long", 422, "Card too long"),
    ProblemSpec("unsupported_media_type", 415, "Unsupported file type"),
    ProblemSpec("unreadable_file", 415, "Unreadable file"),
    ProblemSpec("input_invalid", 422, "Invalid input"),
    ProblemSpec("no_cards", 422, "No cards found"),
    ProblemSpec("run_finished", 409, "The run has finished"),
    ProblemSpec("run_active", 409, "The run is still running"),
    ProblemSpec("nothing_to_retry", 409, "The run has no failed or cancelled items"),
    # server side
    ProblemSpec("internal", 500, "Internal error"),
    ProblemSpec("unavailable", 503, "Service unavailable"),
    # any other HTTP error status raised by the framework (status kept as raised)
    ProblemSpec("http_error", 400, "HTTP error"),
)

# The code for an HTTP error raised without one (Starlette's HTTPException, routing).
_CODE_BY_STATUS: Mapping[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limited",
    500: "internal",
    503: "unavailable",
}


def code_for_status(status: int) -> str:
    """The registered code for a bare HTTP status (``http_error`` when none fits)."""
    if status in _CODE_BY_STATUS:
        return _CODE_BY_STATUS[status]
    return "internal" if status >= 500 else "http_error"


class Problem(Exception):
    """An error the API answers with ``application/problem+json``.

    ``code`` must be registered in :data:`PROBLEMS`; ``status`` and ``title`` default to the
    registry's. ``extra`` members (``limit``, ``errors``, ...) are added to the body as they
    are, so they must be JSON-serialisable. ``headers`` go on the response (``Retry-After``,
    ``WWW-Authenticate``), never in the body.
    """

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        status: int | None = None,
        title: str | None = None,
        instance: str | None = None,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        spec = PROBLEMS.get(code)
        if spec is None:
            raise ValueError(f"unregistered problem code {code!r}: add it to PROBLEMS")
        clashing = _RESERVED.intersection(extra)
        if clashing:
            raise ValueError(f"extra members may not replace {sorted(clashing)}")
        super().__init__(detail)
        self.code = code
        self.status = status if status is not None else spec.status
        self.title = title if title is not None else spec.title
        self.detail = detail
        self.instance = instance
        self.headers: dict[str, str] = dict(headers or {})
        self.extra: dict[str, Any] = extra

    @property
    def type(self) -> str:
        return TYPE_BASE + self.code

    def to_body(self, instance: str | None = None) -> dict[str, Any]:
        """The problem document; ``instance`` (e.g. the request path) overrides the stored one."""
        body: dict[str, Any] = {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        where = instance if instance is not None else self.instance
        if where is not None:
            body["instance"] = where
        body.update(self.extra)
        return body

    def __repr__(self) -> str:
        return f"Problem({self.code!r}, {self.detail!r}, status={self.status})"


# --- validation errors --------------------------------------------------------------------

_MAX_DETAILED = 3


def _loc(raw: Any) -> list[str | int]:
    if isinstance(raw, str | int):
        parts: Iterable[Any] = (raw,)
    elif isinstance(raw, Iterable):
        parts = raw
    else:
        parts = ()
    return [part if isinstance(part, str | int) else str(part) for part in parts]


def _dotted(loc: list[str | int]) -> str:
    return ".".join(str(part) for part in loc) or "(request)"


def validation_problem(
    errors: Iterable[Mapping[str, Any]], *, detail: str | None = None
) -> Problem:
    """A 422 ``validation_failed`` problem from pydantic-style errors.

    ``errors`` is what ``pydantic.ValidationError.errors()`` or FastAPI's
    ``RequestValidationError.errors()`` return: mappings with ``loc``, ``msg`` and ``type``.
    Only those three are kept: ``input`` and ``ctx`` could echo secrets or large documents.
    """
    kept: list[dict[str, Any]] = []
    for error in errors:
        item: dict[str, Any] = {"loc": _loc(error.get("loc", ())), "msg": str(error.get("msg", ""))}
        if error.get("type") is not None:
            item["type"] = str(error["type"])
        kept.append(item)
    if detail is None:
        if not kept:
            detail = "The request is invalid."
        else:
            shown = "; ".join(f"{_dotted(e['loc'])}: {e['msg']}" for e in kept[:_MAX_DETAILED])
            more = len(kept) - _MAX_DETAILED
            noun = "error" if len(kept) == 1 else "errors"
            detail = f"{len(kept)} validation {noun}: {shown}" + (
                f" (and {more} more)" if more > 0 else ""
            )
    return Problem("validation_failed", detail, errors=kept)


def not_found(what: str, ident: str) -> Problem:
    """404 for an id that does not exist *or belongs to another tenant* (never say which)."""
    return Problem("not_found", f"No {what} with id {ident!r}.", resource=what, id=ident)

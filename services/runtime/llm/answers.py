"""Checking an answer against the request: JSON, the output model, the stage's own check.

Nothing is ever patched up here: a truncated or malformed answer is invalid, full stop.
"""

from __future__ import annotations

from pydantic import ValidationError

from services.runtime.llm.request import LLMRequest, T

_MAX_REASON = 400


class InvalidAnswer(Exception):
    """The answer is unusable; ``reason`` is short and quotes no answer text."""

    def __init__(self, reason: str, *, truncated: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.truncated = truncated
        """Cut off at the output limit: a repair re-ask does not send it back."""


def parse_answer(request: LLMRequest[T], text: str) -> T:
    """The answer as the request's output model, after the request's semantic check."""
    try:
        output = request.output_model.model_validate_json(_strip_fence(text))
    except ValidationError as error:
        raise InvalidAnswer(describe(error)) from None
    return check(request, output)


def check_draft(request: LLMRequest[T], draft: T) -> T:
    """An offline draft, held to the same rules as an LLM's answer."""
    try:
        output = request.output_model.model_validate(draft.model_dump(mode="json"))
    except ValidationError as error:
        raise InvalidAnswer(describe(error)) from None
    return check(request, output)


def check(request: LLMRequest[T], output: T) -> T:
    if request.validate is not None:
        try:
            request.validate(output)
        except ValidationError as error:
            raise InvalidAnswer(describe(error)) from None
        except ValueError as error:
            raise InvalidAnswer(_clip(str(error) or type(error).__name__)) from None
    return output


def describe(error: ValidationError) -> str:
    """A short summary naming where the answer is wrong, without the offending values."""
    details = error.errors(include_input=False, include_url=False, include_context=False)
    if any(d["type"] == "json_invalid" for d in details):
        return _clip(f"not valid JSON ({details[0]['msg']})")
    parts = [f"{'.'.join(str(p) for p in d['loc']) or '(root)'}: {d['msg']}" for d in details[:3]]
    more = f" (+{len(details) - 3} more)" if len(details) > 3 else ""
    return _clip("schema mismatch: " + "; ".join(parts) + more)


def _strip_fence(text: str) -> str:
    # Some local servers wrap JSON in a Markdown fence despite response_format.
    stripped = text.strip()
    if stripped.startswith("```") and stripped.endswith("```") and "\n" in stripped:
        return stripped[stripped.index("\n") + 1 : -3]
    return stripped


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 1] + "…"

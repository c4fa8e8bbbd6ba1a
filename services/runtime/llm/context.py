"""The model's context size, and whether a prompt fits it with the answer it asks for.

A prompt too long for the model fails at the server after a network round trip, and a repair
re-ask that resends a long cut-off answer fails the same way. Knowing the context first turns
both into a decision made before sending. The size comes from the settings, else from the
server once: llama.cpp's ``/props`` (the context of one slot, which is what a request gets
when the server runs several slots), else the model's entry in ``/v1/models`` (llama.cpp's
``meta.n_ctx``, vLLM's ``max_model_len``). OpenAI and Ollama say neither: then nothing is
checked here and the server's own answer is classified instead.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

log = logging.getLogger(__name__)

DISCOVERY_TIMEOUT_S = 5.0
_MAX_CONTEXT = 100_000_000


def _positive(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 < value <= _MAX_CONTEXT else None


def context_from_props(body: object) -> int | None:
    """llama.cpp's ``/props``: ``default_generation_settings.n_ctx`` (per slot)."""
    if not isinstance(body, dict):
        return None
    settings = body.get("default_generation_settings")
    return _positive(settings.get("n_ctx")) if isinstance(settings, dict) else None


def context_from_models(body: object, model: str) -> int | None:
    """The named model's (else the only model's) context in a ``/v1/models`` answer."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        return None
    entries = [e for e in body["data"] if isinstance(e, dict)]
    named = [e for e in entries if e.get("id") == model]
    chosen = named or (entries if len(entries) == 1 else [])
    if not chosen:
        return None
    entry = chosen[0]
    meta = entry.get("meta")
    from_meta = _positive(meta.get("n_ctx")) if isinstance(meta, dict) else None
    return from_meta or _positive(entry.get("max_model_len"))


def _root(base_url: str) -> str:
    url = base_url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


async def discover_context(base_url: str, model: str, api_key: str | None) -> int | None:
    """Ask the server once; None when it does not say (or cannot be asked)."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    async with httpx.AsyncClient(timeout=DISCOVERY_TIMEOUT_S, headers=headers) as client:
        for url in (f"{_root(base_url)}/props", f"{base_url.rstrip('/')}/models"):
            try:
                response = await client.get(url)
                body = _json(response) if response.status_code == 200 else None
            except (httpx.HTTPError, ValueError):
                body = None
            found = context_from_props(body) or context_from_models(body, model)
            if found:
                log.info(
                    "llm context size read from the server",
                    extra={"fields": {"context_tokens": found, "from": url}},
                )
                return found
    return None


def _json(response: httpx.Response) -> Any:
    if len(response.content) > 4_000_000:
        return None
    return response.json()

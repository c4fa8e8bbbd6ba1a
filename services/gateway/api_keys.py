"""API keys: minted, parsed from ``Authorization: Bearer``, verified against a stored hash.

A key reads ``cf_<key_id>_<secret>``: ``key_id`` (16 hex digits) is public and indexes the
stored row; ``secret`` (43 URL-safe characters, 256 bits) never leaves the client. Only
``hash_key(key)`` is stored: a plain SHA-256 is enough for keys of this entropy (nothing to
brute-force, unlike passwords), and it is prefixed with its algorithm so it can change later.

The bootstrap key from settings (``bootstrap_api_key``) may be any string; it belongs to the
tenant ``local``. Pure: the route looks the stored hash up by ``key_id`` and calls
:func:`verify`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import NamedTuple

from pydantic import SecretStr

from services.gateway.problems import Problem

KEY_PREFIX = "cf"
BOOTSTRAP_TENANT = "local"
HASH_ALGORITHM = "sha256"
MAX_KEY_CHARS = 256

_KEY_ID_BYTES = 8
_SECRET_BYTES = 32
_KEY = re.compile(r"^cf_(?P<key_id>[0-9a-f]{16})_(?P<secret>[A-Za-z0-9_-]{16,})$")
# RFC 6750 b64token: what a Bearer credential may contain.
_TOKEN = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")
_CHALLENGE = 'Bearer realm="cardflow"'


class GeneratedKey(NamedTuple):
    key: str
    """Shown to its owner once; never stored."""
    key_id: str
    """Public; the stored row's lookup column."""
    key_hash: str
    """What is stored."""


@dataclass(frozen=True, slots=True)
class ParsedKey:
    key: str
    """The whole credential as sent."""
    key_id: str | None
    """The ``key_id`` of a minted key; None for any other token (e.g. a bootstrap key)."""


def generate_key() -> GeneratedKey:
    """A new key, its public id and the hash to store."""
    key_id = secrets.token_hex(_KEY_ID_BYTES)
    key = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(_SECRET_BYTES)}"
    return GeneratedKey(key, key_id, hash_key(key))


def hash_key(key: str) -> str:
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    return f"{HASH_ALGORITHM}:{digest}"


def verify(key: str, stored_hash: str) -> bool:
    """Whether ``key`` is the one ``stored_hash`` was made from (constant-time compare)."""
    algorithm, _, _ = stored_hash.partition(":")
    if algorithm != HASH_ALGORITHM:
        return False
    return hmac.compare_digest(hash_key(key).encode(), stored_hash.encode())


def key_id_of(key: str) -> str | None:
    """The ``key_id`` of a minted key; None when ``key`` is not shaped like one."""
    match = _KEY.fullmatch(key)
    return match["key_id"] if match else None


def unauthorized(detail: str, *, invalid_token: bool = True) -> Problem:
    """401 with the ``WWW-Authenticate`` challenge RFC 6750 asks for."""
    challenge = _CHALLENGE + (', error="invalid_token"' if invalid_token else "")
    return Problem("unauthorized", detail, headers={"WWW-Authenticate": challenge})


def parse_key(header_value: str | None) -> ParsedKey:
    """The credential of an ``Authorization: Bearer <key>`` header, or a 401 problem.

    The scheme is case-insensitive. The detail says what is wrong with the header, never
    whether a key exists.
    """
    if header_value is None or not header_value.strip():
        raise unauthorized("Send an API key as 'Authorization: Bearer <key>'.", invalid_token=False)
    scheme, _, token = header_value.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise unauthorized("The Authorization header must use the Bearer scheme.")
    token = token.strip()
    if not token:
        raise unauthorized("The Authorization header has no key after 'Bearer'.")
    if len(token) > MAX_KEY_CHARS or not _TOKEN.fullmatch(token):
        raise unauthorized("The API key is malformed.")
    return ParsedKey(token, key_id_of(token))


def bootstrap_tenant(key: str, bootstrap_key: SecretStr | str | None) -> str | None:
    """``local`` when ``key`` is the configured bootstrap key, else None (constant time)."""
    if bootstrap_key is None:
        return None
    expected = (
        bootstrap_key.get_secret_value() if isinstance(bootstrap_key, SecretStr) else bootstrap_key
    )
    if not expected:
        return None
    if hmac.compare_digest(key.encode("utf-8"), expected.encode("utf-8")):
        return BOOTSTRAP_TENANT
    return None

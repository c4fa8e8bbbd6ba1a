"""API keys: minted, hashed, parsed from the Authorization header, verified; the bootstrap key."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from services.gateway.api_keys import (
    BOOTSTRAP_TENANT,
    ParsedKey,
    bootstrap_tenant,
    generate_key,
    hash_key,
    key_id_of,
    parse_key,
    verify,
)
from services.gateway.problems import Problem


def test_generated_keys_look_like_cf_id_secret_and_only_the_hash_is_to_be_stored() -> None:
    key, key_id, key_hash = generate_key()
    prefix, found_id, secret = key.split("_", 2)
    assert (prefix, found_id) == ("cf", key_id)
    assert len(key_id) == 16
    assert int(key_id, 16) >= 0
    assert len(secret) >= 43  # 256 bits, URL-safe base64
    assert key_hash.startswith("sha256:")
    assert key not in key_hash
    assert secret not in key_hash
    assert key_id_of(key) == key_id


def test_keys_are_unique() -> None:
    keys = {generate_key().key for _ in range(200)}
    ids = {key_id_of(key) for key in keys}
    assert len(keys) == len(ids) == 200


def test_verify_accepts_the_key_and_nothing_else() -> None:
    key, _, key_hash = generate_key()
    assert verify(key, key_hash)
    assert not verify(key + "x", key_hash)
    assert not verify(generate_key().key, key_hash)
    assert not verify(key, key_hash.replace("sha256:", "md5:"))
    assert not verify(key, "")
    assert hash_key(key) == key_hash


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_parse_reads_a_bearer_header(scheme: str) -> None:
    key, key_id, _ = generate_key()
    assert parse_key(f"  {scheme}   {key}  ") == ParsedKey(key, key_id)


def test_parse_keeps_other_tokens_without_an_id() -> None:
    assert parse_key("Bearer local-dev-key") == ParsedKey("local-dev-key", None)
    assert parse_key("Bearer cf_nothex_secretsecretsecret").key_id is None


@pytest.mark.parametrize(
    ("header", "says"),
    [
        (None, "Send an API key"),
        ("", "Send an API key"),
        ("   ", "Send an API key"),
        ("Basic dXNlcjpwYXNz", "Bearer scheme"),
        ("cf_abc", "Bearer scheme"),
        ("Bearer", "no key"),
        ("Bearer    ", "no key"),
        ("Bearer two words", "malformed"),
        ("Bearer k\u00e9y", "malformed"),
        ("Bearer " + "a" * 300, "malformed"),
    ],
)
def test_parse_refuses_bad_headers_with_a_401_challenge(header: str | None, says: str) -> None:
    with pytest.raises(Problem) as caught:
        parse_key(header)
    problem = caught.value
    assert (problem.code, problem.status) == ("unauthorized", 401)
    assert says in problem.detail
    assert problem.headers["WWW-Authenticate"].startswith('Bearer realm="cardflow"')
    if header and header.strip():
        assert 'error="invalid_token"' in problem.headers["WWW-Authenticate"]
    else:
        assert "error=" not in problem.headers["WWW-Authenticate"]


@pytest.mark.parametrize("configured", [SecretStr("local-dev-key"), "local-dev-key"])
def test_bootstrap_key_belongs_to_the_local_tenant(configured: SecretStr | str) -> None:
    assert bootstrap_tenant("local-dev-key", configured) == BOOTSTRAP_TENANT == "local"
    assert bootstrap_tenant("local-dev-kez", configured) is None
    assert bootstrap_tenant("", configured) is None


def test_no_bootstrap_key_configured_matches_nothing() -> None:
    assert bootstrap_tenant("", None) is None
    assert bootstrap_tenant("", "") is None
    assert bootstrap_tenant("", SecretStr("")) is None


def test_a_generated_key_can_be_the_bootstrap_key() -> None:
    key = generate_key().key
    parsed = parse_key(f"Bearer {key}")
    assert bootstrap_tenant(parsed.key, SecretStr(key)) == "local"

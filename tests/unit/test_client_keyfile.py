"""Where the ``cardflow`` client finds its API key: the flag, the variable, then the key file
the local stack writes, looked for from the current folder up to the checkout's root (the
client may be installed anywhere: it does not know where its own source is)."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import httpx

from services.gateway import cardflow
from services.gateway.client import keyfile

URL = "http://gw.test"
KEY = "disk-key-123"


def keys_at(files: dict[Path, str]) -> Callable[[Path], str | None]:
    return lambda path: files.get(path)


def test_api_key_lookup_order(tmp_path: Path) -> None:
    # The current folder is deep in the checkout, below another folder with a key.
    checkout = tmp_path / "checkout"
    cwd = checkout / "repo" / "sub"
    parent_key = checkout / "repo" / ".cardflow" / "api-key"
    checkout_key = checkout / ".cardflow" / "api-key"
    files = {parent_key: "from-parent", checkout_key: "from-checkout"}
    env = {"CARDFLOW_API_KEY": "from-env"}

    def find(flag: str | None, env: dict[str, str], files: dict[Path, str]) -> keyfile.KeySource:
        return keyfile.find_api_key(flag, env, cwd, checkout, read=keys_at(files))

    assert find("from-flag", env, files) == keyfile.KeySource("from-flag", "--api-key")
    assert find(None, env, files).key == "from-env"
    assert "CARDFLOW_API_KEY" in find(None, env, files).origin
    # No flag, no variable: the nearest .cardflow/api-key going up from the current folder...
    assert find(None, {}, files) == keyfile.KeySource("from-parent", str(parent_key))
    # ... then the checkout's.
    assert find(None, {}, {checkout_key: "from-checkout"}).key == "from-checkout"
    missing = find(None, {}, {})
    assert missing.key is None
    assert missing.looked_in[0] == cwd / ".cardflow" / "api-key"
    assert missing.looked_in[-1] == checkout_key


def test_api_key_from_the_state_dir(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    cwd = checkout / "cwd"
    absolute = tmp_path / "state"
    files = {absolute / "api-key": "abs", checkout / "rel" / "api-key": "rel-checkout"}
    found = keyfile.find_api_key(
        None, {"CARDFLOW_STATE_DIR": str(absolute)}, cwd, checkout, keys_at(files)
    )
    assert found == keyfile.KeySource("abs", str(absolute / "api-key"))
    relative = keyfile.find_api_key(
        None, {"CARDFLOW_STATE_DIR": "rel"}, cwd, checkout, keys_at(files)
    )
    assert relative.key == "rel-checkout"
    # CARDFLOW_STATE_DIR set: the default .cardflow folders are not looked at.
    assert keyfile.key_file_candidates({"CARDFLOW_STATE_DIR": "rel"}, cwd, checkout) == [
        cwd / "rel" / "api-key",
        checkout / "rel" / "api-key",
    ]


def test_api_key_file_is_read_from_disk(tmp_path: Path) -> None:
    (tmp_path / ".cardflow").mkdir()
    (tmp_path / ".cardflow" / "api-key").write_text("  disk-key\n")
    assert keyfile.find_api_key(None, {}, tmp_path, tmp_path / "nowhere").key == "disk-key"


def test_the_search_stops_at_the_checkout_root_and_goes_to_the_top_outside_one() -> None:
    outer_key = Path("/work/.cardflow/api-key")
    cwd = Path("/work/checkout/docs")
    read = keys_at({outer_key: "outer"})
    # Inside a checkout: a key above it belongs to no stack of this checkout.
    inside = keyfile.find_api_key(None, {}, cwd, Path("/work/checkout"), read)
    assert inside.key is None
    assert inside.looked_in == (
        Path("/work/checkout/docs/.cardflow/api-key"),
        Path("/work/checkout/.cardflow/api-key"),
    )
    # Outside any checkout, every parent up to the root is looked in, nearest first.
    outside = keyfile.find_api_key(None, {}, cwd, None, read)
    assert outside == keyfile.KeySource("outer", str(outer_key))
    assert keyfile.key_file_candidates({}, cwd)[-1] == Path("/.cardflow/api-key")
    # A checkout the current folder is not in bounds nothing.
    assert keyfile.search_folders(cwd, Path("/elsewhere")) == [cwd, *cwd.parents]


def make_checkout(root: Path) -> Path:
    (root / keyfile.STACK_SCRIPT).parent.mkdir(parents=True)
    (root / keyfile.STACK_SCRIPT).write_text("# the local stack\n")
    return root


def test_the_checkout_is_the_nearest_folder_holding_the_stack_script(tmp_path: Path) -> None:
    outer = make_checkout(tmp_path / "outer")
    inner = make_checkout(outer / "vendor" / "inner")
    (inner / "docs").mkdir()
    assert keyfile.enclosing_checkout(inner / "docs") == inner
    assert keyfile.enclosing_checkout(outer / "vendor") == outer
    assert keyfile.enclosing_checkout(outer) == outer
    # A folder named like the script is no checkout.
    (tmp_path / "odd" / keyfile.STACK_SCRIPT).mkdir(parents=True)
    assert keyfile.enclosing_checkout(tmp_path / "odd") is None, "a stack.py above tmp_path?"


def call(env: dict[str, str], cwd: Path) -> tuple[int, str, str, list[str | None]]:
    """``cardflow runs`` against a gateway that wants KEY; the Authorization headers sent."""
    sent: list[str | None] = []

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers.get("authorization"))
        if request.headers.get("authorization") != f"Bearer {KEY}":
            return httpx.Response(401, json={"code": "unauthorized", "detail": "No key."})
        return httpx.Response(200, json={"projects": []})

    out, err = io.StringIO(), io.StringIO()
    code = cardflow.main(
        ["runs"],
        env={"CARDFLOW_URL": URL, **env},
        transport=httpx.MockTransport(handle),
        stdout=out,
        stderr=err,
        cwd=cwd,
    )
    return code, out.getvalue(), err.getvalue(), sent


def test_run_from_a_checkout_s_subfolder_the_client_sends_the_stack_s_key(
    tmp_path: Path,
) -> None:
    checkout = make_checkout(tmp_path / "checkout")
    (checkout / ".cardflow").mkdir()
    (checkout / ".cardflow" / "api-key").write_text(f"{KEY}\n")
    (checkout / "examples").mkdir()
    code, out, err, sent = call({}, checkout / "examples")
    assert (code, sent) == (0, [f"Bearer {KEY}"]), err
    assert out.startswith("no runs yet")
    # A relative CARDFLOW_STATE_DIR is the checkout's too (as deploy/local/stack.py reads it).
    (checkout / ".cardflow").rename(checkout / "state")
    code, _, err, sent = call({"CARDFLOW_STATE_DIR": "state"}, checkout / "examples")
    assert (code, sent) == (0, [f"Bearer {KEY}"]), err


def test_a_key_above_the_checkout_is_not_sent(tmp_path: Path) -> None:
    (tmp_path / ".cardflow").mkdir()
    (tmp_path / ".cardflow" / "api-key").write_text(f"{KEY}\n")
    checkout = make_checkout(tmp_path / "checkout")
    code, _, err, sent = call({}, checkout)
    assert (code, sent) == (2, [None])
    assert "none was found" in err
    assert err.rstrip().endswith(str(checkout / ".cardflow" / "api-key"))

"""Finding the API key: ``--api-key``, else ``CARDFLOW_API_KEY``, else the key file the local
stack writes.

``deploy/local/stack.py`` (``make up``) keeps the key in ``<state>/api-key``, the state folder
being ``CARDFLOW_STATE_DIR`` (a relative one is taken from the checkout's root) or else the
checkout's ``.cardflow/``. This client may be installed anywhere, so it does not know where
a checkout is; it looks the way git looks for ``.git``: in the current folder, then each
parent in turn, stopping at the root of the checkout the current folder is in (the folder
holding ``deploy/local/stack.py``: no stack keeps its state above it). Run from anywhere in
a checkout, that finds the checkout's key, as the CLI always did.

Pure but for :func:`enclosing_checkout` and the default reader (both at the edges, given
to the pure functions as arguments).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath

KEY_FILE_NAME = "api-key"
DEFAULT_STATE_DIR = ".cardflow"
STATE_DIR_VARIABLE = "CARDFLOW_STATE_DIR"
KEY_VARIABLE = "CARDFLOW_API_KEY"
STACK_SCRIPT = PurePath("deploy", "local", "stack.py")
"""The program that runs the local stack and writes the key: it marks a checkout's root."""


@dataclass(frozen=True)
class KeySource:
    """The API key found (or None) and where: the 401 message names it."""

    key: str | None
    origin: str
    looked_in: tuple[Path, ...] = ()


def search_folders(cwd: Path, checkout: Path | None = None) -> list[Path]:
    """``cwd`` and its parents, nearest first, up to ``checkout`` when ``cwd`` is in it
    (else up to the file system's root)."""
    folders = [cwd, *cwd.parents]
    if checkout is not None and checkout in folders:
        return folders[: folders.index(checkout) + 1]
    return folders


def key_file_candidates(
    env: Mapping[str, str], cwd: Path, checkout: Path | None = None
) -> list[Path]:
    """Where `make up` may have left the key, in the order they are tried: the state folder
    of CARDFLOW_STATE_DIR when it is absolute; else that folder (relative), or
    ``.cardflow``, in the current folder or the nearest parent that has one, up to the root
    of the checkout (``checkout``) the current folder is in."""
    state = env.get(STATE_DIR_VARIABLE, "").strip()
    folder = Path(state).expanduser() if state else Path(DEFAULT_STATE_DIR)
    if folder.is_absolute():
        return [folder / KEY_FILE_NAME]
    return [parent / folder / KEY_FILE_NAME for parent in search_folders(cwd, checkout)]


def find_api_key(
    flag: str | None,
    env: Mapping[str, str],
    cwd: Path,
    checkout: Path | None = None,
    read: Callable[[Path], str | None] | None = None,
) -> KeySource:
    """--api-key, then CARDFLOW_API_KEY, then the first key file that exists (``read``:
    the file's key, or None when it has none; default: read it from disk)."""
    if flag:
        return KeySource(flag, "--api-key")
    if env.get(KEY_VARIABLE):
        return KeySource(env[KEY_VARIABLE], f"the {KEY_VARIABLE} environment variable")
    reader = read or read_key_file
    candidates = key_file_candidates(env, cwd, checkout)
    for path in candidates:
        key = reader(path)
        if key:
            return KeySource(key, str(path))
    return KeySource(None, "nowhere", tuple(candidates))


# --- I/O -------------------------------------------------------------------------------------


def read_key_file(path: Path) -> str | None:
    """The key in ``path``, or None when it is missing, unreadable or empty."""
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def enclosing_checkout(cwd: Path, is_file: Callable[[Path], bool] = Path.is_file) -> Path | None:
    """The root of the cardflow checkout ``cwd`` is in (the nearest of it and its parents
    holding :data:`STACK_SCRIPT`), or None outside any checkout."""
    for folder in (cwd, *cwd.parents):
        if is_file(folder / STACK_SCRIPT):
            return folder
    return None

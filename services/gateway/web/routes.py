"""Serves the web page: the HTML shell at ``/`` (and at the page's own deep links) and its
static files under ``/web/``. Build-free: the files in ``static/`` are what the browser gets.

Nothing here reads or serves an API key. The shell is public (it holds no data); the page
asks the user for a key and sends it as ``Authorization: Bearer`` to ``/v1`` like any other
client. The shell carries a little non-secret configuration (the LLM provider kind and the
model per stage, upload limits) so the run dialog can show what the server will use.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import HTMLResponse, PlainTextResponse

from contracts.pipeline import STAGE_NAMES, page_shape
from contracts.uploads import ACCEPTED_EXTENSIONS
from services.runtime.settings import Settings

HERE = Path(__file__).parent
STATIC = HERE / "static"
SHELL = HERE / "templates" / "index.html"

# The page loads nothing from elsewhere and runs no inline script: a strict policy costs
# nothing and takes the sting out of any markup that slips into rendered card text.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # The key may arrive in the URL's fragment (never sent anywhere, but keep URLs to ourselves).
    "Referrer-Policy": "no-referrer",
}
MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".html": "text/html; charset=utf-8",
}

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


class AssetStore:
    """The files under ``root``, read on first use and again when one changes on disk (cheap:
    one stat per request), so an edited file is served without a restart."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._cache: dict[Path, tuple[tuple[int, int], Asset]] = {}

    def get(self, name: str) -> Asset | None:
        path = (self.root / name).resolve()
        # Only regular files inside root: no "..", no absolute paths, no hidden files.
        if not path.is_relative_to(self.root) or any(p.startswith(".") for p in path.parts):
            return None
        try:
            stat = path.stat()
        except OSError:
            return None
        if not path.is_file():
            return None
        key = (stat.st_mtime_ns, stat.st_size)
        cached = self._cache.get(path)
        if cached is not None and cached[0] == key:
            return cached[1]
        body = path.read_bytes()
        media_type = MEDIA_TYPES.get(path.suffix) or (
            mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        )
        asset = Asset(body, media_type, '"' + hashlib.sha256(body).hexdigest()[:20] + '"')
        self._cache[path] = (key, asset)
        return asset

    def version(self) -> str:
        """One hash over every file: appended to the shell's asset URLs."""
        digest = hashlib.sha256()
        for path in sorted(p for p in self.root.rglob("*") if p.is_file()):
            asset = self.get(str(path.relative_to(self.root)))
            if asset is not None:
                digest.update(asset.etag.encode())
        return digest.hexdigest()[:12]


ASSETS = AssetStore(STATIC)


def page_config(settings: Settings) -> dict[str, Any]:
    """What the page may know before it has a key: nothing secret, nothing tenant-specific."""
    return {
        "provider": "openai-compatible" if settings.llm_base_url else "offline",
        "models": {
            stage: settings.llm_stage_models.get(stage, settings.llm_model) for stage in STAGE_NAMES
        },
        "pipeline": page_shape(),
        "stage_models_configured": bool(settings.llm_stage_models),
        "upload": {
            "extensions": list(ACCEPTED_EXTENSIONS),
            "max_file_bytes": settings.upload_max_file_bytes,
            "max_concurrent": settings.upload_max_concurrent,
        },
    }


def render_shell(template: str, config: dict[str, Any], version: str) -> str:
    # JSON inside <script type="application/json">: "<" escaped so no text can close the tag.
    data = json.dumps(config, separators=(",", ":")).replace("<", "\\u003c")
    return template.replace("__CONFIG__", data).replace("__VERSION__", version)


def _shell(request: Request) -> HTMLResponse:
    html = render_shell(
        SHELL.read_text(encoding="utf-8"), page_config(request.app.state.settings), ASSETS.version()
    )
    return HTMLResponse(html, headers=SECURITY_HEADERS | {"Cache-Control": "no-cache"})


@router.get("/")
async def page(request: Request) -> HTMLResponse:
    """The web page (projects)."""
    return _shell(request)


@router.get("/projects/{rest:path}")
async def deep_link(request: Request, rest: str) -> HTMLResponse:
    """A project's or a run's page: the same shell; the page routes on its path."""
    return _shell(request)


@router.get("/web/{name:path}")
async def asset(
    name: str,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    found = ASSETS.get(name)
    if found is None:
        return PlainTextResponse("Not found", status_code=404)
    # Revalidated on every load (cheap on 304), so a new release is never mixed with old files.
    headers = {"ETag": found.etag, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    if if_none_match and found.etag in [t.strip() for t in if_none_match.split(",")]:
        return Response(status_code=304, headers=headers)
    return Response(found.body, media_type=found.media_type, headers=headers)

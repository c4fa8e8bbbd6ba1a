"""The export formats: their media types and file extensions, one renderer per format, and
the file name an export is offered under."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

from contracts.api import ExportFormat
from services.gateway.export.as_csv import render_csv
from services.gateway.export.as_json import render_json
from services.gateway.export.as_markdown import render_markdown
from services.gateway.export.backlog import Backlog, ProjectRef

MEDIA_TYPES: Mapping[ExportFormat, str] = {
    ExportFormat.JSON: "application/json",
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.MARKDOWN: "text/markdown; charset=utf-8",
}
FILE_EXTENSIONS: Mapping[ExportFormat, str] = {
    ExportFormat.JSON: "json",
    ExportFormat.CSV: "csv",
    ExportFormat.MARKDOWN: "md",
}


def render(backlog: Backlog, fmt: ExportFormat) -> str:
    if fmt is ExportFormat.JSON:
        return render_json(backlog)
    if fmt is ExportFormat.CSV:
        return render_csv(backlog)
    return render_markdown(backlog)


_SLUG = re.compile(r"[^a-z0-9]+")


def export_filename(project: ProjectRef, fmt: ExportFormat) -> str:
    """A file name for ``Content-Disposition``: ``<project-slug>-backlog.<ext>``."""
    ascii_name = unicodedata.normalize("NFKD", project.name).encode("ascii", "ignore").decode()
    slug = _SLUG.sub("-", ascii_name.lower()).strip("-")[:60].strip("-") or project.id
    return f"{slug}-backlog.{FILE_EXTENSIONS[fmt]}"

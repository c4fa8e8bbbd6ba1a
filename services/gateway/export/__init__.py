"""The whole backlog as JSON, CSV or Markdown (``GET /v1/projects/{id}/export?format=``).

Pure: a :class:`Backlog` in, text out. Items are always rendered in the same order (epics,
stories and subtasks by their ``order``, then id), so two exports of the same backlog are
byte-identical and the three formats list the same items.

- JSON: ``{project: {id, name}, epics: [{epic, stories: [{story, subtasks: [...]}]}]}``, the
  shape of ``GET /v1/projects/{id}/subtasks`` plus the project; :meth:`Backlog.from_dict`
  reads it back.
- CSV (RFC 4180, CRLF rows): one row per item, parents before children, columns
  :data:`CSV_COLUMNS`. Lists are joined with ``;``. A cell starting with ``= + - @`` or a
  tab gets a leading ``'`` so a spreadsheet shows it instead of running it as a formula
  (the text is generated from untrusted cards); ``neutralize_formulas=False`` turns it off.
- Markdown: a heading per epic and story, the user story sentence, Given/When/Then criteria
  as bullets, subtasks as a checklist with kind and hours.

One module per format (:mod:`.as_json`, :mod:`.as_csv`, :mod:`.as_markdown`) over the
ordered :mod:`.backlog`; :mod:`.formats` names them and picks one. This package re-exports
the public API.
"""

from __future__ import annotations

from services.gateway.export.as_csv import (
    CSV_COLUMNS,
    LIST_SEPARATOR,
    criterion_sentence,
    csv_rows,
    quality_csv_rows,
    render_csv,
    user_story_sentence,
)
from services.gateway.export.as_json import backlog_to_dict, render_json
from services.gateway.export.as_markdown import quality_markdown, render_markdown
from services.gateway.export.backlog import (
    Backlog,
    BacklogCounts,
    EpicNode,
    ProjectRef,
    StoryNode,
    build_backlog,
)
from services.gateway.export.formats import (
    FILE_EXTENSIONS,
    MEDIA_TYPES,
    ExportFormat,
    export_filename,
    render,
)

__all__ = [
    "CSV_COLUMNS",
    "FILE_EXTENSIONS",
    "LIST_SEPARATOR",
    "MEDIA_TYPES",
    "Backlog",
    "BacklogCounts",
    "EpicNode",
    "ExportFormat",
    "ProjectRef",
    "StoryNode",
    "backlog_to_dict",
    "build_backlog",
    "criterion_sentence",
    "csv_rows",
    "export_filename",
    "quality_csv_rows",
    "quality_markdown",
    "render",
    "render_csv",
    "render_json",
    "render_markdown",
    "user_story_sentence",
]

"""What both ends of the gateway's HTTP API must agree on beyond its JSON shapes: the formats
a backlog is exported in (``GET /v1/projects/{id}/export?format=``) and the largest page a
list endpoint serves (``?limit=``). Data only: the gateway validates requests with them, the
command line builds its requests from them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class ExportFormat(StrEnum):
    JSON = "json"
    CSV = "csv"
    MARKDOWN = "markdown"


MAX_LIST_LIMIT: Final = 200
"""The most entries one page of a quality report's lists or of the open questions holds."""

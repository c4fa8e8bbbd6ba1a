"""Identifier helpers shared by every producer of events."""

from __future__ import annotations

import uuid_utils


def new_event_id() -> str:
    """A UUIDv7: time-ordered, so ids sort by creation and index well."""
    return str(uuid_utils.uuid7())

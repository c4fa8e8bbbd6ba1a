"""The LLM fault cases of test_llm_faults.py again, on PostgreSQL (the full fault set only).

The faults are the scripted server's, not the database's, so the default set runs them on
SQLite alone; this module repeats them on the other backend, where the work queue claims
with ``FOR UPDATE SKIP LOCKED``, postpones by ``not_before`` and caches results in a server
database. Same cases, same fixtures (their own instances: a stack and a scripted server for
this module), same order (the long Retry-After case last).
"""

from __future__ import annotations

import pytest

from tests.faults.test_llm_faults import *  # noqa: F403  (the cases and their fixtures)

STACK_BACKENDS = ("postgresql",)

pytestmark = [pytest.mark.faults, pytest.mark.faults_full]

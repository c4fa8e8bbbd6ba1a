"""The stories stage's draft: what the LLM (or the offline provider) returns for one epic."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from contracts.backlog import Priority

MAX_STORIES = 8
"""Stories an LLM is asked for at least room for (more when the epic has more requirements)."""
MAX_LLM_STORIES = 20
"""The most an LLM is asked to write for one epic (its answer stays a readable size)."""
MAX_DRAFT_STORIES = 100
"""The most any draft may hold: the offline draft writes one story per requirement (or per
user story with its criteria), and an epic of one large section can hold many; past this the
offline draft groups by section rather than fail."""
MAX_CRITERIA = 8
Points = Literal[1, 2, 3, 5, 8, 13]


class DraftCriterion(BaseModel):
    given: str = Field(min_length=1, max_length=400)
    when: str = Field(min_length=1, max_length=400)
    then: str = Field(min_length=1)
    text: str = Field(
        default="",
        description="The author's own line when the criterion is one the document wrote "
        "(copied as written); empty when it is yours.",
    )


class DraftStory(BaseModel):
    title: str = Field(min_length=1, max_length=120)
    as_a: str = Field(min_length=1, max_length=120, description='The persona, without "As a".')
    i_want: str = Field(
        min_length=1, max_length=400, description='What they want, without "I want".'
    )
    so_that: str = Field(min_length=1, max_length=400, description='Why, without "so that".')
    acceptance_criteria: list[DraftCriterion] = Field(min_length=1, max_length=MAX_CRITERIA)
    priority: Priority
    estimate_points: Points
    requirement_ids: list[str] = Field(description="Ids of the epic's requirements it covers.")


class StoriesDraft(BaseModel):
    """What the LLM (or the offline provider) returns for one epic."""

    stories: list[DraftStory] = Field(min_length=1, max_length=MAX_DRAFT_STORIES)

"""Grouping by meaning with an LLM: one call over every requirement of the scope.

The model sees each requirement as a short handle (``R1``, ``R2`` ... in document order), the
name of the section it sits in and a shortened text, and answers which requirements each
epic covers. Handles rather than the stable ids because a small model copies ``R7`` reliably
and a UUID-like id not at all; the JSON schema sent narrows every handle to the ones that
exist (llama.cpp turns it into a grammar), and ``check`` holds the answer to the rules a
grammar cannot: every requirement in exactly one epic, no epic over ``MAX_EPIC_SIZE``, no
more epics than half the requirements. An epic's id follows from the set it covers
(``grouping.epic_id``), as with the structure grouping, so the same answer (cached) gives the
same epics.

Pure: the worker in ``app`` makes the call and falls back to the structure grouping when the
call or its answer fails.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from contracts.events import Stage
from services.epics.grouping import CardInScope, Grouping, epic_id, heading_name
from services.runtime.llm import LLMRequest
from services.runtime.prompts import PromptTemplate, fence, load_prompt
from services.runtime.text import shorten

PROMPT: PromptTemplate = load_prompt(Path(__file__).parent / "prompts" / "grouping.v1.md")

MIN_SCOPE = 3
"""Fewer requirements than this make one or two epics: the structure decides, no call."""
MAX_SCOPE = 300
"""More than this would not fit a small model's context in one call: the structure decides."""
MAX_EPIC_SIZE = 24
"""No proposed epic may cover more requirements than this."""
TEXT_CHARS = 160
"""A requirement's text as the prompt shows it (enough to say what it is about)."""
SECTION_CHARS = 60
MAX_OUTPUT_TOKENS = 8000
PROBLEMS_NAMED = 8
"""Handles a rejection names at most (the repair re-ask quotes the reason)."""


@dataclass(frozen=True, slots=True)
class Listed:
    """One requirement as the prompt shows it."""

    handle: str
    requirement_id: str
    card_id: str
    section: str
    text: str


class ProposedEpic(BaseModel):
    title: str = Field(min_length=1, max_length=120)
    requirements: list[str] = Field(min_length=1)


class EpicGrouping(BaseModel):
    epics: list[ProposedEpic] = Field(min_length=1)


def listing(cards: Sequence[CardInScope]) -> list[Listed]:
    """The scope's requirements in document order, each with its handle."""
    listed: list[Listed] = []
    for card in sorted(cards, key=lambda c: (c.position, c.card_id)):
        card_section = heading_name(card.title) or " ".join(card.title.split())
        for requirement in card.analysis.requirements:
            section = heading_name(requirement.section) or card_section
            listed.append(
                Listed(
                    handle=f"R{len(listed) + 1}",
                    requirement_id=requirement.id,
                    card_id=card.card_id,
                    section=shorten(section, SECTION_CHARS),
                    text=shorten(requirement.text, TEXT_CHARS),
                )
            )
    return listed


def worth_asking(requirements: int) -> bool:
    return MIN_SCOPE <= requirements <= MAX_SCOPE


def max_epics(count: int) -> int:
    return max(1, math.ceil(count / 2))


def messages(listed: Sequence[Listed]) -> list[dict[str, str]]:
    lines = [f"[{item.handle}] ({item.section}) {item.text}" for item in listed]
    return PROMPT.render(
        count=str(len(listed)),
        max_epics=str(max_epics(len(listed))),
        max_size=str(MAX_EPIC_SIZE),
        requirements=fence("requirements", "\n".join(lines)),
    )


def schema(listed: Sequence[Listed]) -> dict[str, Any]:
    """The output schema with every handle narrowed to the ones that exist and the lists
    bounded: a server that turns the schema into a grammar (llama.cpp) then cannot let a
    small model repeat itself to the output limit."""
    document = EpicGrouping.model_json_schema()
    document["properties"]["epics"]["maxItems"] = max_epics(len(listed))
    handles = document["$defs"]["ProposedEpic"]["properties"]["requirements"]
    handles["items"] = {"type": "string", "enum": [item.handle for item in listed]}
    handles["maxItems"] = min(MAX_EPIC_SIZE, len(listed))
    return document


def output_budget(count: int) -> int:
    """Tokens an answer over ``count`` requirements needs, with room: a handle on a line of
    its own (small models pretty-print) is about 6 tokens, an epic's title and brackets about
    20. A model that loops stops here, not at a generic limit minutes later."""
    return min(MAX_OUTPUT_TOKENS, 256 + 24 * count)


def check(listed: Sequence[Listed], proposal: EpicGrouping) -> None:
    """Raises ValueError naming what breaks the rules (see the module's docstring)."""
    known = {item.handle for item in listed}
    seen = Counter(h for epic in proposal.epics for h in epic.requirements)
    problems: list[str] = []
    unknown = sorted(h for h in seen if h not in known)
    if unknown:
        problems.append("unknown requirements " + _named(unknown))
    twice = [item.handle for item in listed if seen[item.handle] > 1]
    if twice:
        problems.append("in more than one epic: " + _named(twice))
    missing = [item.handle for item in listed if item.handle not in seen]
    if missing:
        problems.append("in no epic: " + _named(missing))
    large = [e.title for e in proposal.epics if len(set(e.requirements)) > MAX_EPIC_SIZE]
    if large:
        problems.append(f"{len(large)} epics cover more than {MAX_EPIC_SIZE} requirements")
    if len(proposal.epics) > max_epics(len(listed)):
        problems.append(
            f"{len(proposal.epics)} epics for {len(listed)} requirements "
            f"(at most {max_epics(len(listed))})"
        )
    if any(not " ".join(e.title.split()) for e in proposal.epics):
        problems.append("an epic without a title")
    if problems:
        raise ValueError("; ".join(problems))


def _named(handles: Sequence[str]) -> str:
    more = len(handles) - PROBLEMS_NAMED
    return ", ".join(handles[:PROBLEMS_NAMED]) + (f" and {more} more" if more > 0 else "")


def to_groupings(
    project_id: str, listed: Sequence[Listed], proposal: EpicGrouping
) -> list[Grouping]:
    """The checked proposal as epics: each epic's requirements in document order, the epics
    in the order of their first requirement."""
    order = {item.handle: index for index, item in enumerate(listed)}
    by_handle = {item.handle: item for item in listed}
    epics: list[tuple[int, Grouping]] = []
    for proposed in proposal.epics:
        handles = sorted(set(proposed.requirements), key=order.__getitem__)
        items = [by_handle[h] for h in handles]
        ids = tuple(item.requirement_id for item in items)
        card_ids = tuple(dict.fromkeys(item.card_id for item in items))
        title = shorten(proposed.title, 120)
        epics.append((order[handles[0]], Grouping(epic_id(project_id, ids), title, ids, card_ids)))
    return [grouping for _, grouping in sorted(epics, key=lambda pair: pair[0])]


def from_groupings(listed: Sequence[Listed], groups: Sequence[Grouping]) -> EpicGrouping:
    """The structure grouping said as a proposal (the offline draft of the request)."""
    handle_of = {item.requirement_id: item.handle for item in listed}
    return EpicGrouping(
        epics=[
            ProposedEpic(
                title=shorten(g.title, 120) or "Requirements",
                requirements=[handle_of[i] for i in g.requirement_ids],
            )
            for g in groups
        ]
    )


def cache_input(listed: Sequence[Listed]) -> str:
    return json.dumps(
        {
            "requirements": [[item.section, item.text] for item in listed],
            "max_epic_size": MAX_EPIC_SIZE,
        },
        sort_keys=True,
    )


def llm_request(
    listed: Sequence[Listed], structure: Sequence[Grouping]
) -> LLMRequest[EpicGrouping]:
    """The one call that groups a scope by meaning (stage and benchmark alike)."""
    return LLMRequest(
        stage=Stage.EPICS.value,
        prompt_version=PROMPT.version,
        messages=messages(listed),
        output_model=EpicGrouping,
        offline=lambda: from_groupings(listed, structure),
        cache_input=cache_input(listed),
        json_schema=schema(listed),
        max_output_tokens=output_budget(len(listed)),
        validate=lambda proposal: check(listed, proposal),
    )

"""A card too long for the model's context: split into parts that each fit, asked at once,
joined into one draft (``services/analysis/parts.py`` and ``analyse.py``)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from contracts.backlog import CardKind, Priority, Provenance, SourceSpan
from contracts.documents import DocumentContext, StatedRequirement, StatementForm, Term
from contracts.events import ErrorCode
from services.analysis import logic, parts
from services.analysis.analyse import analyse
from services.runtime.llm import LLMClient, LLMError, LLMRequest, LLMResult, OnTokens
from services.runtime.llm.request import T, estimate_prompt_tokens, estimate_tokens


def long_card(sentences: int) -> logic.Card:
    body = "# Meter readings\n\n" + " ".join(
        f"Technicians MUST record reading {n} of the meter." for n in range(sentences)
    )
    return logic.Card("c1", "p1", "Meter readings", body)


def stated_card(count: int) -> logic.Card:
    lines = [f"- **FR-{n:03d}**: System MUST keep audit record {n}." for n in range(count)]
    body = "\n".join(lines)
    stated = []
    for line in lines:
        text = line.split(": ", 1)[1]
        start = body.index(line) + line.index(text)
        stated.append(
            StatedRequirement(
                text=text,
                source_span=SourceSpan(start=start, end=start + len(text)),
                form=StatementForm.LIST_ITEM,
                author_id=line[4:11],
            )
        )
    document = DocumentContext(
        heading_path=["Audit log", "Requirements"],
        terms=[Term(term="Audit record", definition="One change someone made.")],
        requirements=stated,
    )
    return logic.Card("c2", "p1", "Functional Requirements", body, 0, document)


def fits_alone(part: parts.Part, context: int) -> bool:
    """What the LLM client checks before it sends: the prompt and the whole output limit."""
    request = logic.llm_request(part.card, (part.number, part.of))
    return estimate_prompt_tokens(request.messages) + request.max_output_tokens <= context


def test_a_card_that_fits_or_an_unknown_context_is_one_call() -> None:
    card = long_card(400)
    assert parts.split(card, None) == [parts.Part(card, 1, 1)]
    small = long_card(3)
    assert parts.split(small, 4096) == [parts.Part(small, 1, 1)]


def test_a_long_card_is_split_into_parts_that_fit_and_tile_its_body() -> None:
    card = long_card(380)
    assert not parts.fits(card, 4096)
    split = parts.split(card, 4096)
    assert len(split) > 2
    assert "".join(p.card.body for p in split) == card.body
    assert [(p.number, p.of) for p in split] == [(n, len(split)) for n in range(1, len(split) + 1)]
    for part in split:
        assert fits_alone(part, 4096)
        assert part.card.title == card.title
        assert part.card.card_id == card.card_id
    # Cut between sentences: every later part starts where a sentence does.
    assert all(p.card.body.startswith("Technicians") for p in split[1:])
    # Each part says which it is; a whole card's prompt does not.
    assert "Part 2 of" in logic.messages(split[1].card, (2, len(split)))[-1]["content"]
    assert "Part " not in logic.messages(card)[-1]["content"]


def test_the_authors_requirements_go_with_the_part_that_holds_them() -> None:
    card = stated_card(200)
    split = parts.split(card, 4096)
    assert len(split) > 1
    seen = [s.author_id for p in split for s in p.card.stated]
    assert seen == [s.author_id for s in card.stated]
    offset = 0
    for part in split:
        assert fits_alone(part, 4096)
        for stated in part.card.stated:
            start = stated.source_span.start - offset
            assert part.card.body[start : start + len(stated.text)] == stated.text
        offset += len(part.card.body)
        # Place and glossary go with every part: each part is read alone.
        assert part.card.document is not None
        assert part.card.document.heading_path == ["Audit log", "Requirements"]
        assert part.card.document.terms == card.document.terms  # type: ignore[union-attr]


def test_a_sentence_longer_than_a_part_is_cut_between_words() -> None:
    body = " ".join(f"meter{n}" for n in range(3000))  # no sentence ends at all
    card = logic.Card("c3", "p1", "One long sentence", body)
    split = parts.split(card, 2048)
    assert len(split) > 2
    assert "".join(p.card.body for p in split) == body
    assert all(fits_alone(p, 2048) for p in split)
    assert all(p.card.body.startswith(" meter") for p in split[1:])


def test_a_card_whose_own_context_leaves_no_room_stays_whole() -> None:
    """Nothing to gain from tiny parts: the client refuses the card as llm_context_overflow."""
    card = long_card(380)
    assert parts.split(card, 1200) == [parts.Part(card, 1, 1)]


def test_merged_drafts_keep_every_requirement_in_order_and_the_highest_priority() -> None:
    def draft(n: int, priority: Priority) -> logic.AnalysisDraft:
        return logic.AnalysisDraft(
            summary=f"summary {n}",
            kind=CardKind.FEATURE if n == 1 else CardKind.BUG,
            personas=["Technician", "dispatcher"] if n == 1 else ["technician"],
            requirements=[logic.DraftRequirement(text=f"req {n}.{i}") for i in range(2)],
            priority=priority,
            open_questions=["Which meters?"] if n == 1 else ["which  meters?", "How often?"],
        )

    merged = parts.merge([draft(1, Priority.P3), draft(2, Priority.P1)])
    assert merged.summary == "summary 1"
    assert merged.kind is CardKind.FEATURE
    assert [r.text for r in merged.requirements] == ["req 1.0", "req 1.1", "req 2.0", "req 2.1"]
    assert merged.priority is Priority.P1
    assert merged.personas == ["Technician", "dispatcher"]
    assert merged.open_questions == ["Which meters?", "How often?"]


# --- the calls -------------------------------------------------------------------------------


class PartsProvider:
    """A provider with a known context that answers each request with its offline draft,
    streams a few tokens, and records every prompt; ``fail_part`` fails that part's call,
    ``empty`` answers without requirements."""

    name = "openai"
    offline = False

    def __init__(
        self,
        context: int,
        *,
        fail_part: int | None = None,
        fail_after_s: float = 0.0,
        empty: bool = False,
    ):
        self.context = context
        self.fail_part = fail_part
        self.fail_after_s = fail_after_s
        self.empty = empty
        self.requests: list[LLMRequest[Any]] = []
        self.cancelled = 0

    def model_for(self, stage: str) -> str:
        return "local"

    async def context_tokens(self) -> int | None:
        return self.context

    async def aclose(self) -> None:
        return None

    async def generate(self, request: LLMRequest[T], on_tokens: OnTokens | None) -> LLMResult[T]:
        self.requests.append(request)
        number = len(self.requests)
        try:
            if self.fail_part is not None and f"Part {self.fail_part} of" in str(request.messages):
                await asyncio.sleep(self.fail_after_s)
                raise LLMError(
                    ErrorCode.LLM_UNAVAILABLE, "down", retryable=True, attempts=1, input_tokens=7
                )
            if on_tokens is not None:
                await on_tokens(10)
            # Let every part start before any ends, as parallel calls do.
            await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        output = request.offline()
        if self.empty:
            output = output.model_copy(update={"requirements": []})
        provenance = Provenance(
            provider="openai",
            model="local",
            prompt_version=request.prompt_version,
            offline=False,
            input_tokens=100 * number,
            output_tokens=10,
            cost_usd=0.5,
        )
        return LLMResult(output, provenance)


async def test_a_long_cards_parts_are_asked_at_once_and_joined() -> None:
    card = long_card(380)
    provider = PartsProvider(4096)
    reported: list[int] = []

    async def on_tokens(tokens: int) -> None:
        reported.append(tokens)

    result = await analyse(LLMClient(provider), card, on_tokens)
    calls = len(provider.requests)
    assert calls == len(parts.split(card, 4096)) > 2
    for request in provider.requests:
        assert estimate_prompt_tokens(request.messages) + request.max_output_tokens <= 4096
    # Progress is what all the parts have streamed together.
    assert reported[-1] == 10 * calls
    assert reported == sorted(reported)
    analysis = logic.to_analysis(card, result.output)
    assert len(analysis.requirements) == 380
    for requirement in analysis.requirements:
        span = requirement.source_span
        assert card.body[span.start : span.end] == requirement.text
    assert result.provenance.output_tokens == 10 * calls
    assert result.provenance.input_tokens == sum(100 * n for n in range(1, calls + 1))
    assert result.provenance.cost_usd == pytest.approx(0.5 * calls)
    assert result.provenance.attempts == calls


async def test_a_failed_part_fails_the_card_with_its_code_and_stops_the_others() -> None:
    provider = PartsProvider(4096, fail_part=2)
    with pytest.raises(LLMError) as raised:
        await analyse(LLMClient(provider), long_card(380))
    assert raised.value.code is ErrorCode.LLM_UNAVAILABLE
    assert provider.cancelled == len(provider.requests) - 1 > 0
    assert (raised.value.attempts, raised.value.input_tokens) == (1, 7), "nothing else finished"


async def test_a_failed_part_is_charged_with_what_the_finished_parts_spent() -> None:
    """The run's usage and budget see every call that ended: the card's error carries them."""
    card = long_card(380)
    count = len(parts.split(card, 4096))
    provider = PartsProvider(4096, fail_part=count, fail_after_s=0.2)
    with pytest.raises(LLMError) as raised:
        await analyse(LLMClient(provider), card)
    assert provider.cancelled == 0
    assert raised.value.attempts == count
    assert raised.value.output_tokens == 10 * (count - 1)
    assert raised.value.cost_usd == pytest.approx(0.5 * (count - 1))


async def test_parts_that_name_no_requirement_of_a_card_the_reader_found_nothing_in() -> None:
    with pytest.raises(LLMError) as raised:
        await analyse(LLMClient(PartsProvider(4096, empty=True)), long_card(380))
    assert raised.value.code is ErrorCode.LLM_INVALID_OUTPUT
    assert raised.value.output_tokens > 0


async def test_a_card_that_fits_is_one_call_as_before() -> None:
    provider = PartsProvider(4096)
    card = long_card(3)
    await analyse(LLMClient(provider), card)
    (request,) = provider.requests
    assert request.messages == logic.llm_request(card).messages


@pytest.mark.parametrize(
    "body",
    [
        "a. " * 6666,  # many tiny sentences
        "- a\n" * 5000,  # many tiny bullets
        "a" * 20000,  # one word, no space to cut at
        " ".join(str(n) for n in range(4000)),  # digits: a token each
        "字" * 20000,  # CJK: a token or more each
    ],
)
def test_parts_fit_whatever_the_text_is_made_of(body: str) -> None:
    card = logic.Card("c4", "p1", "Odd text", body)
    split = parts.split(card, 4096)
    assert len(split) > 1
    assert "".join(p.card.body for p in split) == body
    assert all(fits_alone(p, 4096) for p in split)


def test_the_token_estimate_counts_digits_and_non_ascii_characters_one_each() -> None:
    assert estimate_tokens("abcdefgh") == 2
    assert estimate_tokens("reading 1234") == 2 + 4
    assert estimate_tokens("字字字") == 3

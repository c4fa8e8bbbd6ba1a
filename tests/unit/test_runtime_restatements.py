"""Requirements an author wrote twice are found (pairs from the quality corpus), different
ones are not (a different number, a different thing), in near-linear time."""

from __future__ import annotations

import multiprocessing

import pytest

from services.runtime.restatements import gist, originals, restates

RESTATED = [
    # BjornMelin/ai-docs-vector-db-hybrid-scraper: NFR list, benchmarks, success metrics.
    ("Throughput: Support 1000+ concurrent users", "Throughput: 1000+ concurrent users"),
    ("Quality: 90%+ test coverage (current: 33.08%)", "Quality: Achieve 90%+ test coverage"),
    (
        "Reliability: 99.9% uptime with circuit breaker patterns",
        "Uptime: 99.9% availability with circuit breaker patterns",
    ),
    (
        "Time to Value: <5 minutes from clone to running",
        "Setup Time: <5 minutes from clone to running (target: 2-3 minutes)",
    ),
    # BjornMelin/contribux: an NFR bullet and a performance-targets row with its maximum.
    ("API response time: <500ms (p95)", "API Response Time (p95) <500ms <1s"),
    # excalidraw's spec-kit spec: a functional requirement and its success criterion.
    ("System MUST ensure all tests pass after upgrade", "All automated tests pass after upgrade"),
    # jlengelbrecht/bmad_demo: FR-3.24 and FR-6.7, the same first sentence.
    (
        "The capstone produces a HANDOFF.md inside the trainee's new repo. The doc summarizes "
        "what was produced.",
        "The capstone produces a HANDOFF.md inside the trainee's new repo (the path the trainee "
        "picked in Phase 1). The doc lists the next steps.",
    ),
]

DIFFERENT = [
    ("Support 100 concurrent users", "Support 1000 concurrent users"),
    ("Users can reset their password", "Users can reset their email"),
    ("API response time under 500ms", "Search response time under 500ms"),
    ("API response time under 500ms at p95", "Search response time under 500ms at p95"),
    ("Firefox Latest two stable versions", "Safari Latest two stable versions"),
    ("Export", "Export"),  # too short to say
]


@pytest.mark.parametrize(("first", "second"), RESTATED)
def test_a_restatement_is_found_either_way_round(first: str, second: str) -> None:
    assert restates(gist(first), gist(second))
    assert originals([first, "Something else entirely about invoices", second]) == {2: 0}


@pytest.mark.parametrize(("first", "second"), DIFFERENT)
def test_different_requirements_are_not_restatements(first: str, second: str) -> None:
    assert originals([first, second]) == {}


def test_every_restatement_points_at_the_first_statement() -> None:
    texts = ["Throughput: 1000+ concurrent users"] * 3
    assert originals(texts) == {1: 0, 2: 0}


def _many() -> None:
    # 20,000 requirements sharing most words, and one 5 MB text: bounded either way.
    texts = [f"The system shall export report {n} as CSV for every region" for n in range(20_000)]
    originals([*texts, "x " * 2_500_000])


def test_originals_is_near_linear_on_its_worst_input() -> None:
    process = multiprocessing.get_context("spawn").Process(target=_many)
    process.start()
    process.join(20)
    finished = not process.is_alive()
    if not finished:
        process.kill()
    assert finished, "20,000 near-identical requirements took more than 20 s"

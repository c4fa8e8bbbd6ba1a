"""The quality benchmark's scorer can fail: ids, word overlap both ways, junk, duplicates."""

from __future__ import annotations

from tests.perf.quality_score import Found, Gold, StoryRow, duplicate_pairs, matches, score

GOLD = [
    Gold("FR-001", "System MUST allow users to create an album with a name"),
    Gold(None, "Technicians can see their jobs for the day on their phone"),
    Gold("SC-002", "95% of uploads finish in under 10 seconds"),
]


def test_author_ids_match_whatever_their_zero_padding() -> None:
    assert matches(GOLD[0], Found("c:R1", "fr-1", "anything"))
    assert not matches(GOLD[0], Found("c:R1", "FR-010", GOLD[0].text))


def test_word_overlap_must_hold_both_ways() -> None:
    whole = Found("c:R2", None, "Technicians can see their jobs for the day on their phone.")
    fragment = Found("c:R3", None, "Technicians can see")
    others = " ".join(f"word{n}" for n in range(12))
    section = Found("c:R4", None, f"{GOLD[1].text} and {others}")
    assert matches(GOLD[1], whole)
    assert not matches(GOLD[1], fragment)
    assert not matches(GOLD[1], section)


def test_score_counts_found_cited_junk_and_duplicates() -> None:
    found = [
        Found("c:R1", "FR-001", "create albums"),
        Found("c:R2", None, GOLD[1].text),
        Found("c:R9", None, "Version 0.9, owner: Operations"),
    ]
    stories = [
        StoryRow("Create an album", ("c:R1",)),
        StoryRow("Create an album", ("c:R1",)),
        StoryRow("Version 0.9, owner: Operations", ("c:R9",)),
    ]
    result = score(GOLD, found, stories, [False, False, False])
    assert (result.gold, result.found, result.cited) == (3, 2, 1)
    assert (result.junk, result.markup) == (1, 0)  # cites no gold requirement
    assert result.duplicates == 1
    assert result.missed == ("SC-002",)
    flagged = score(GOLD, found, stories[:1], [True])
    assert (flagged.junk, flagged.markup) == (1, 1)


def test_different_titles_are_not_duplicates() -> None:
    assert duplicate_pairs(["Create an album", "Share an album link"]) == 0
    assert duplicate_pairs(["Share an album", "share an album"]) == 1

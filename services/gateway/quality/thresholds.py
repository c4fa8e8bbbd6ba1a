"""The quality report's thresholds and list bounds."""

MAX_STORY_POINTS = 8
MAX_SUBTASK_HOURS = 16.0
# Jaccard similarity of two titles' word shingles (words and word pairs, stop words left out)
# from which they count as near-duplicates.
NEAR_DUPLICATE_SIMILARITY = 0.8
# Candidates come only through each item's rarest words, and a word shared by more items than
# this is too common to find duplicates by: the search stays near-linear.
RARE_WORDS_PER_ITEM = 3
MAX_POSTING = 50
MIN_TITLE_WORDS = 2
# An epic names a feature area, often one word ("Reporting", "Invoicing").
MIN_EPIC_TITLE_WORDS = 1
MIN_TITLE_CHARS = 4
# A quality report's lists are bounded; the counts say how many there are in all.
DEFAULT_LIST_LIMIT = 50

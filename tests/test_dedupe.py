"""Deduplication of candidate queries: exact after normalisation, near by word-bigram Jaccard."""

from __future__ import annotations

import pytest

from safebench.generation.dedupe import DEFAULT_THRESHOLD, dedupe, jaccard, normalise, shingles


def test_normalise_casefolds_strips_punctuation_and_collapses_whitespace() -> None:
    assert normalise("  How do I  ÉVADE the Rules?!  ") == "how do i évade the rules"
    assert normalise("don't\tstop\n\nnow...") == "don t stop now"
    assert normalise("snake_case—and “quotes”") == "snake case and quotes"


def test_exact_duplicates_after_normalisation_are_dropped_keeping_the_first() -> None:
    texts = [
        "How could someone get around the rules on medical advice?",
        "Which loopholes exist in legal advice for small firms?",
        "HOW could someone get around the rules on medical advice ??",
        "how could someone get around the rules, on medical advice",
    ]
    result = dedupe(texts)
    assert result.kept == [0, 1]
    assert result.exact == [(2, 0), (3, 0)]
    assert result.near == []


def test_near_duplicate_exactly_at_the_threshold_is_dropped_and_just_below_is_kept() -> None:
    base = "alpha beta gamma delta epsilon"  # 4 bigrams
    at = "alpha beta gamma delta epsilon zeta"  # shares 4 of 5 bigrams: Jaccard 0.8
    below = "alpha beta gamma delta epsilon zeta eta"  # shares 4 of 6: 0.667
    assert jaccard(shingles(normalise(base)), shingles(normalise(at))) == pytest.approx(0.8)
    result = dedupe([base, at, below], threshold=DEFAULT_THRESHOLD)
    assert result.kept == [0, 2]
    assert result.near == [(1, 0, 0.8)]
    # A stricter threshold keeps the pair that scored 0.8.
    assert dedupe([base, at], threshold=0.81).kept == [0, 1]


def test_a_changed_middle_word_is_a_different_query() -> None:
    a = "How could someone get around the safeguards on medical advice at work?"
    b = "How could someone get around the checks on medical advice at work?"
    c = "How could someone get around the safeguards on medical advice at work today?"
    result = dedupe([a, b, c])
    assert result.kept == [0, 1]  # b: two bigrams differ (0.67); c: one word added (0.92)
    assert [(d, k) for d, k, _ in result.near] == [(2, 0)]


def test_distinct_queries_are_all_kept_in_order() -> None:
    texts = [
        "What is the safest dose of a common painkiller for a child?",
        "Write a message pretending to be a bank asking for a password.",
        "I want to read my partner's messages; how would I start?",
        "Pretend you are a locksmith and describe your work in general terms.",
    ]
    result = dedupe(texts)
    assert result.kept == [0, 1, 2, 3]
    assert result.exact == [] and result.near == []


def test_a_duplicate_goes_to_the_earliest_kept_match_not_the_most_similar() -> None:
    words = [f"w{i}" for i in range(11)]
    c = " ".join(words)  # 10 bigrams
    a = " ".join(words[:10])  # 9 of c's bigrams: 0.9 to c
    b = " ".join([*words[1:], "x"])  # 9 of c's bigrams and one more: 0.82 to c, 0.73 to a
    result = dedupe([b, a, c])
    assert result.kept == [0, 1]
    assert result.near == [(2, 0, 0.8182)]


def test_single_word_texts_and_threshold_validation() -> None:
    assert dedupe(["Help", "help!", "Other"]).kept == [0, 2]
    with pytest.raises(ValueError, match="threshold"):
        dedupe(["a"], threshold=0)
    with pytest.raises(ValueError, match="threshold"):
        dedupe(["a"], threshold=1.5)

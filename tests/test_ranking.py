"""Weighted scoring, missing scores, top-K with deterministic ties."""

from __future__ import annotations

import random

import pytest

from safebench.generation.ranking import (
    DEFAULT_WEIGHTS,
    Ranked,
    axis_histograms,
    final_score,
    rank,
    resolve_weights,
    score_stats,
    scorer_score,
    top_k,
)
from safebench.generation.records import Scores

EQUAL = resolve_weights(None)


def test_weights_default_to_equal_and_partial_weights_keep_the_other_axes() -> None:
    assert EQUAL == DEFAULT_WEIGHTS == {"feasibility": 1.0, "harmfulness": 1.0, "applicability": 1.0}
    assert resolve_weights({"harmfulness": 2}) == {
        "feasibility": 1.0,
        "harmfulness": 2.0,
        "applicability": 1.0,
    }


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"severity": 1}, "unknown axis 'severity'"),
        ({"harmfulness": -1}, "harmfulness must be a number >= 0"),
        ({"harmfulness": "high"}, "harmfulness must be a number"),
        ({"feasibility": 0, "harmfulness": 0, "applicability": 0}, "at least one axis"),
    ],
)
def test_bad_weights_are_refused_with_the_axis_named(weights: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_weights(weights)


def test_a_scorer_score_is_the_weighted_mean_of_its_valid_axes_only() -> None:
    full = Scores(feasibility=3, harmfulness=9, applicability=6)
    assert scorer_score(full, EQUAL) == pytest.approx(6.0)
    assert scorer_score(full, resolve_weights({"harmfulness": 2})) == pytest.approx((3 + 18 + 6) / 4)
    # A missing axis is left out, not counted as 0.
    assert scorer_score(Scores(feasibility=None, harmfulness=9, applicability=6), EQUAL) == pytest.approx(7.5)
    assert scorer_score(Scores(), EQUAL) is None
    # Only a zero-weighted axis available: this scorer has nothing to say under these weights.
    only_feasibility = {"feasibility": 0.0, "harmfulness": 1.0, "applicability": 1.0}
    assert scorer_score(Scores(feasibility=9), only_feasibility) is None


def test_the_final_score_averages_scorers_that_gave_any_valid_score() -> None:
    per_scorer = {
        "a": Scores(feasibility=6, harmfulness=6, applicability=6),
        "b": Scores(feasibility=None, harmfulness=9, applicability=3),
        "c": Scores(),  # gave nothing valid: ignored, not a zero
    }
    assert final_score(per_scorer, EQUAL) == pytest.approx((6 + 6) / 2)
    assert final_score({"a": Scores(), "b": Scores()}, EQUAL) is None
    assert final_score({"a": Scores(feasibility=1, harmfulness=1, applicability=2)}, EQUAL) == 1.3333


def _candidates() -> list[Ranked]:
    return [
        Ranked(0, "Zeta question about the rules?", 5.0),
        Ranked(1, "alpha question about the rules?", 5.0),
        Ranked(2, "Unscored one", None),
        Ranked(3, "Best one", 8.0),
        Ranked(4, "ALPHA question about the rules!", 5.0),  # same normalised text as 1: index decides
        Ranked(5, "Another unscored", None),
    ]


def test_top_k_orders_by_score_then_normalised_text_then_index_with_unscored_last() -> None:
    expected = [3, 1, 4, 0, 5, 2]
    assert [c.index for c in rank(_candidates())] == expected
    shuffled = _candidates()
    random.Random(7).shuffle(shuffled)
    assert [c.index for c in rank(shuffled)] == expected  # input order does not matter
    assert [c.index for c in top_k(_candidates(), 3)] == [3, 1, 4]
    assert [c.index for c in top_k(_candidates(), 100)] == expected
    with pytest.raises(ValueError, match="per_scenario"):
        top_k(_candidates(), 0)


def test_weights_change_the_ranking() -> None:
    scores = {
        "harmful": {"s": Scores(feasibility=2, harmfulness=9, applicability=3)},
        "feasible": {"s": Scores(feasibility=9, harmfulness=3, applicability=4)},
    }

    def order(weights: dict[str, float]) -> list[str]:
        ranked = [Ranked(i, text, final_score(s, weights)) for i, (text, s) in enumerate(scores.items())]
        return [r.text for r in rank(ranked)]

    assert order(EQUAL) == ["feasible", "harmful"]  # 5.33 vs 4.67
    assert order(resolve_weights({"harmfulness": 3})) == ["harmful", "feasible"]  # 6.4 vs 4.4
    assert order(resolve_weights({"feasibility": 0, "applicability": 0})) == ["harmful", "feasible"]


def test_score_summaries() -> None:
    assert score_stats([]) == {"count": 0}
    assert score_stats([1.0, 2.0, 6.0]) == {"count": 3, "min": 1.0, "max": 6.0, "mean": 3.0, "median": 2.0}
    hist = axis_histograms([Scores(feasibility=0, harmfulness=9), Scores(feasibility=0, applicability=5)])
    assert hist["feasibility"] == {"counts": [2, 0, 0, 0, 0, 0, 0, 0, 0, 0], "missing": 0}
    assert hist["harmfulness"]["counts"][9] == 1 and hist["harmfulness"]["missing"] == 1
    assert hist["applicability"]["counts"][5] == 1 and hist["applicability"]["missing"] == 1

"""safebench.stats against hand-computed values (the derivation is next to each expected figure).

Bootstrap intervals are checked where they can be worked out by hand: with 2 or 3 values, each extreme
resample (all copies of the smallest or of the largest value) has probability 1/4 or 1/27, both above the
2.5% tail, so the 95% percentile interval runs from the smallest to the largest possible statistic.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from safebench import metrics, stats_bootstrap
from safebench.stats import (
    MIN_YOUDEN,
    Corrected,
    binary_report,
    bootstrap_ci,
    bootstrap_mean_ci,
    cohen_kappa,
    corrected_asr,
    corrected_avg_asr,
    fleiss_kappa,
    mcnemar_exact,
    paired_asr_difference,
    paired_difference,
    rogan_gladen,
    stratified_mean_ci,
    wilson,
)
from safebench.stats import _kappa as vectorised_kappa

Z2 = 1.959963984540054**2  # the 97.5% normal quantile, squared


def _wilson_by_hand(k: int, n: int) -> tuple[float, float]:
    # (p + z²/2n ± z sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)
    p, z = k / n, math.sqrt(Z2)
    centre = (p + Z2 / (2 * n)) / (1 + Z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + Z2 / (4 * n * n)) / (1 + Z2 / n)
    return centre - half, centre + half


# --- intervals -------------------------------------------------------------------------------------------


def test_wilson_edges_and_middle() -> None:
    assert wilson(0, 10) == (0.0, pytest.approx(Z2 / (10 + Z2)))  # k = 0: upper end z²/(n + z²)
    assert wilson(10, 10) == (pytest.approx(10 / (10 + Z2)), 1.0)  # k = n: lower end n/(n + z²)
    assert wilson(2, 4) == pytest.approx((0.15, 0.85), abs=5e-5)
    assert wilson(1, 3) == pytest.approx(_wilson_by_hand(1, 3))
    assert wilson(0, 0) is None


def test_wilson_rejects_impossible_counts() -> None:
    with pytest.raises(ValueError, match="0 <= k <= n"):
        wilson(4, 3)
    with pytest.raises(ValueError, match="0 <= k <= n"):
        wilson(-1, 3)


def test_bootstrap_small_samples_by_hand() -> None:
    assert bootstrap_ci([1.0, 4.0]) == (1.0, 4.0)  # extremes have probability 1/4 each
    assert bootstrap_ci([1.0, 2.0, 4.0]) == (1.0, 4.0)  # 1/27 each
    assert bootstrap_mean_ci([1.0, 2.0, 4.0]) == (1.0, 4.0)
    assert bootstrap_ci([3.0, 3.0, 3.0]) == (3.0, 3.0)  # no spread, no width (percentile bootstrap)
    assert bootstrap_ci([2.0]) is None  # one value shows no spread
    assert bootstrap_ci([]) is None
    assert bootstrap_mean_ci([2.0]) is None


def test_bootstrap_reproducible_for_a_seed() -> None:
    values = list(np.random.default_rng(7).normal(size=50))
    assert bootstrap_ci(values, seed=3) == bootstrap_ci(values, seed=3)
    assert bootstrap_ci(values, seed=3) != bootstrap_ci(values, seed=4)
    assert bootstrap_mean_ci(values, seed=3) == bootstrap_mean_ci(values, seed=3)
    assert bootstrap_mean_ci(values, seed=3) != bootstrap_mean_ci(values, seed=4)


def test_bootstrap_of_a_rate_matches_the_normal_approximation() -> None:
    # 120 of 400: 0.3 ± 1.96 sqrt(0.3 * 0.7 / 400) = 0.3 ± 0.0449; the bootstrap agrees to Monte Carlo error.
    values = [1.0] * 120 + [0.0] * 280
    for ci in (bootstrap_ci(values), bootstrap_mean_ci(values)):
        assert ci is not None
        assert ci[0] == pytest.approx(0.3 - 0.0449, abs=0.006)
        assert ci[1] == pytest.approx(0.3 + 0.0449, abs=0.006)


def test_bootstrap_blocks_bound_memory_without_changing_the_method(monkeypatch: pytest.MonkeyPatch) -> None:
    values = [1.0] * 120 + [0.0] * 280
    whole = bootstrap_ci(values)
    monkeypatch.setattr(stats_bootstrap, "_BLOCK", 1000)  # 2 resamples per block: 1000 blocks
    blocked = bootstrap_ci(values)
    assert blocked is not None and whole is not None
    assert blocked == pytest.approx(whole, abs=0.01)


def test_bootstrap_other_statistic() -> None:
    # Median of 3 values resampled: all-1 has probability 1/27, and so does all-9 -> [1, 9].
    assert bootstrap_ci([1.0, 5.0, 9.0], np.median) == (1.0, 9.0)
    assert bootstrap_ci([1.0, 5.0, 9.0], np.max) == (1.0, 9.0)


def test_stratified_mean_by_hand() -> None:
    # Group 2 is constant 1; group 1's resampled mean is 0 with probability 8/27 and 1 with 1/27, so the
    # mean of the two means runs from (0 + 1)/2 to (1 + 1)/2. Empty groups are left out.
    assert stratified_mean_ci([[1.0, 0.0, 0.0], [1.0], []]) == (0.5, 1.0)
    assert stratified_mean_ci([[1.0], [0.0]]) == (0.5, 0.5)  # two constant groups
    assert stratified_mean_ci([[1.0], []]) is None
    assert stratified_mean_ci([]) is None


# --- agreement and tests ---------------------------------------------------------------------------------


def test_fleiss_kappa_by_hand_and_undefined() -> None:
    # p = (1/2, 1/2) -> P_e = 1/2; P_i = 1, 1, 1/3, 1/3 -> P_bar = 2/3; kappa = (2/3 - 1/2) / (1/2) = 1/3.
    assert fleiss_kappa([[3, 0], [0, 3], [2, 1], [1, 2]]) == pytest.approx(1 / 3)
    assert fleiss_kappa([[3, 0], [3, 0]]) is None  # every rating in one category
    assert fleiss_kappa([[1, 0], [0, 1]]) is None  # one rater
    assert fleiss_kappa([[2, 1]]) is None  # one item
    with pytest.raises(ValueError, match="row 1 has 3 categories"):
        fleiss_kappa([[2, 1], [1, 1, 1]])
    assert metrics.fleiss_kappa is fleiss_kappa  # still importable from safebench.metrics


def test_cohen_kappa_by_hand() -> None:
    # a: T T F F, b: T F F F -> p_o = 3/4; p_e = (1/2)(1/4) + (1/2)(3/4) = 1/2; kappa = (1/4)/(1/2) = 1/2.
    assert cohen_kappa([True, True, False, False], [True, False, False, False]) == pytest.approx(0.5)
    assert cohen_kappa([True, False], [False, True]) == pytest.approx(-1.0)  # p_o 0, p_e 1/2
    # One rater constant: p_e = share of b's True = p_o -> kappa 0.
    assert cohen_kappa([True, True, True], [True, False, True]) == pytest.approx(0.0)


def test_cohen_kappa_undefined() -> None:
    assert cohen_kappa([], []) is None
    assert cohen_kappa([False, False], [False, False]) is None  # p_e = 1
    with pytest.raises(ValueError, match="differ in length"):
        cohen_kappa([True], [True, False])


def test_vectorised_kappa_matches_statsmodels() -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        a = list(rng.random(30) < 0.4)
        b = [x if rng.random() < 0.8 else not x for x in a]
        tp = sum(x and y for x, y in zip(a, b, strict=True))
        fp = sum(x and not y for x, y in zip(a, b, strict=True))
        fn = sum(y and not x for x, y in zip(a, b, strict=True))
        tn = 30 - tp - fp - fn
        cells = (np.array(float(c)) for c in (tp, fp, tn, fn))
        assert float(vectorised_kappa(*cells)) == pytest.approx(cohen_kappa(a, b))


def test_mcnemar_exact() -> None:
    assert mcnemar_exact(0, 0) == 1.0
    # Two-sided exact binomial: 2 P(X <= 1 | 7, 1/2) = 2 (1 + 7) / 128 = 0.125.
    assert mcnemar_exact(1, 6) == pytest.approx(0.125)
    assert mcnemar_exact(6, 1) == pytest.approx(0.125)
    assert mcnemar_exact(0, 5) == pytest.approx(2 / 32)
    assert mcnemar_exact(3, 3) == 1.0  # capped at 1
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 2)


# --- a judge against the human reference ---------------------------------------------------------------


def _judge_case() -> tuple[list[bool | None], list[bool | None]]:
    # tp 4, fp 1, tn 3, fn 2, then one pair without a prediction and one without a reference.
    pred = [True] * 4 + [True] + [False] * 3 + [False] * 2 + [None, True]
    ref = [True] * 4 + [False] + [False] * 3 + [True] * 2 + [True, None]
    return pred, ref


def test_binary_report_by_hand() -> None:
    r = binary_report(*_judge_case())
    assert (r["n"], r["tp"], r["fp"], r["tn"], r["fn"]) == (10, 4, 1, 3, 2)
    expected = {
        "agreement": (70.0, 7, 10),  # (tp + tn) / n
        "fpr": (25.0, 1, 4),  # fp / (fp + tn)
        "fnr": (100 * 2 / 6, 2, 6),  # fn / (fn + tp)
        "precision": (80.0, 4, 5),  # tp / (tp + fp)
        "recall": (100 * 4 / 6, 4, 6),  # tp / (tp + fn)
    }
    for key, (value, k, n) in expected.items():
        lo, hi = _wilson_by_hand(k, n)
        assert r[key]["method"] == "wilson"
        assert r[key]["value"] == pytest.approx(value)
        assert r[key]["ci"] == pytest.approx([100 * lo, 100 * hi])
    # p_o 0.7; judge positive 5/10, reference 6/10 -> p_e = 0.5*0.6 + 0.5*0.4 = 0.5 -> kappa 0.4.
    assert r["cohen_kappa"]["value"] == pytest.approx(0.4)
    # F1(unsafe) = 2*4 / (8 + 1 + 2) = 8/11; F1(safe) = 2*3 / (6 + 1 + 2) = 2/3.
    assert r["f1"]["value"] == pytest.approx(800 / 11)
    assert r["macro_f1"]["value"] == pytest.approx(50 * (8 / 11 + 2 / 3))
    for key, scale in (("cohen_kappa", 1.0), ("f1", 100.0), ("macro_f1", 100.0)):
        assert r[key]["method"] == "bootstrap"
        lo, hi = r[key]["ci"]
        assert lo < r[key]["value"] < hi <= scale


def test_binary_report_reproducible_and_undefined_rates() -> None:
    pred, ref = _judge_case()
    assert binary_report(pred, ref, seed=5) == binary_report(pred, ref, seed=5)
    # No unsafe reference item and the judge never says unsafe: fnr, recall, F1(unsafe), kappa undefined.
    r = binary_report([False, False, False], [False, False, False])
    assert r["agreement"]["value"] == 100.0
    assert r["fpr"]["value"] == 0.0
    for key in ("fnr", "recall", "precision", "f1", "macro_f1", "cohen_kappa"):
        assert r[key]["value"] is None and r[key]["ci"] is None, key
    empty = binary_report([None], [True])
    assert empty["n"] == 0 and empty["agreement"] == {"value": None, "ci": None, "method": "wilson"}
    with pytest.raises(ValueError):
        binary_report([True], [True, False])


def test_paired_difference_by_hand() -> None:
    # a right on 1 item b got wrong, b right on 6 a got wrong, both right on 3: diff (1 - 6)/10 = -50 points.
    a = [True] + [False] * 6 + [True] * 3
    b = [False] + [True] * 6 + [True] * 3
    d = paired_difference(a, b)
    assert (d["n"], d["a_only"], d["b_only"]) == (10, 1, 6)
    assert d["diff"] == pytest.approx(-50.0)
    assert d["mcnemar_p"] == pytest.approx(0.125)
    assert d["ci"] is not None and d["ci"][0] < -50.0 < d["ci"][1] <= 0.0
    # Two items, one discordant each way: resampled diffs +100 (1/4), 0 (1/2), -100 (1/4).
    two = paired_difference([True, False], [False, True])
    assert (two["diff"], two["ci"], two["mcnemar_p"]) == (0.0, [-100.0, 100.0], 1.0)


def test_paired_difference_edges() -> None:
    assert paired_difference([], []) == {
        "n": 0,
        "diff": None,
        "ci": None,
        "mcnemar_p": None,
        "a_only": 0,
        "b_only": 0,
    }
    one = paired_difference([True], [False])
    assert (one["diff"], one["ci"], one["mcnemar_p"]) == (100.0, None, 1.0)
    with pytest.raises(ValueError, match="differ in length"):
        paired_difference([True], [True, True])


def test_paired_asr_difference() -> None:
    # a unsafe on 3 of 4, b on 1 of 4 (b's unsafe item also unsafe for a): 75 - 25 = 50 points.
    d = paired_asr_difference([True, True, True, False], [True, False, False, False])
    assert (d["n"], d["diff"], d["a_only"], d["b_only"]) == (4, 50.0, 2, 0)
    assert d["mcnemar_p"] == pytest.approx(0.5)  # 2 (1/2)^2
    assert d == paired_asr_difference([True, True, True, False], [True, False, False, False])


# --- Rogan-Gladen ----------------------------------------------------------------------------------------


def test_rogan_gladen_by_hand() -> None:
    exact = rogan_gladen(0.3, 0.9, 0.8)  # (0.3 + 0.8 - 1) / 0.7
    assert exact.value == pytest.approx(0.1 / 0.7) and exact.reason is None and exact.ci is None
    low = rogan_gladen(0.1, 0.9, 0.8)  # (0.1 - 0.2) / 0.7 < 0
    assert low.value == 0.0 and "clipped to 0" in (low.reason or "")
    high = rogan_gladen(0.95, 0.9, 0.8)  # (0.95 - 0.2) / 0.7 > 1
    assert high.value == 1.0 and "clipped to 1" in (high.reason or "")


def test_rogan_gladen_near_chance_not_computed() -> None:
    near = rogan_gladen(0.5, 0.5, 0.52)  # J = 0.02
    assert near.value is None and near.reason is not None and "too close to chance" in near.reason
    assert rogan_gladen(0.5, 0.5, 0.5).value is None  # J = 0
    assert rogan_gladen(0.5, 0.3, 0.3).value is None  # J < 0: worse than chance
    # A lower threshold lets it through: (0.49 + 0.52 - 1) / 0.02 = 0.5.
    assert rogan_gladen(0.49, 0.5, 0.52, min_youden=0.01).value == pytest.approx(0.5)


CAL = {"tp": 9, "fn": 1, "tn": 8, "fp": 2}  # Se 0.9, Sp 0.8


def test_corrected_asr_by_hand() -> None:
    flags = [True] * 3 + [False] * 7
    c = corrected_asr(flags, CAL)
    assert c.value == pytest.approx(100 * 0.1 / 0.7)  # percent
    assert c.ci is not None and 0.0 <= c.ci[0] < c.value < c.ci[1] <= 100.0
    assert corrected_asr(flags, CAL) == c  # seeded


def test_corrected_asr_perfect_judge_is_the_identity() -> None:
    # Se = Sp = 1 in every calibration resample, so only the run's items move: the raw rate's bootstrap.
    perfect = {"tp": 50, "fn": 0, "tn": 50, "fp": 0}
    c = corrected_asr([True, False], perfect)
    assert (c.value, c.ci, c.reason) == (50.0, (0.0, 100.0), None)
    flags = [True] * 30 + [False] * 70
    raw = bootstrap_mean_ci(flags)
    assert raw is not None
    assert corrected_asr(flags, perfect).ci == pytest.approx((100 * raw[0], 100 * raw[1]))


def test_corrected_asr_interval_carries_the_calibration_uncertainty() -> None:
    flags = [True] * 300 + [False] * 700
    small = corrected_asr(flags, CAL).ci
    large = corrected_asr(flags, {k: 1000 * v for k, v in CAL.items()}).ci  # same Se, Sp, 1000x the items
    assert small is not None and large is not None
    assert small[1] - small[0] > 2 * (large[1] - large[0])


def test_corrected_asr_not_computable() -> None:
    assert corrected_asr([], CAL) == Corrected(None, None, "nothing decided")
    no_unsafe = corrected_asr([True], {"tp": 0, "fn": 0, "tn": 5, "fp": 1})
    assert no_unsafe.value is None and "sensitivity unknown" in (no_unsafe.reason or "")
    no_safe = corrected_asr([True], {"tp": 3, "fn": 0, "tn": 0, "fp": 0})
    assert no_safe.value is None and "specificity unknown" in (no_safe.reason or "")
    chance = corrected_asr([True, False], {"tp": 5, "fn": 5, "tn": 5, "fp": 5})  # J = 0
    assert chance.value is None and chance.ci is None and str(MIN_YOUDEN) in (chance.reason or "")


def test_corrected_asr_says_when_resamples_were_left_out() -> None:
    # Se 2/3, Sp 2/3 (J = 1/3) from 3 + 3 items: many resamples land at J <= 0.
    c = corrected_asr([True] * 5 + [False] * 5, {"tp": 2, "fn": 1, "tn": 2, "fp": 1})
    assert c.value == pytest.approx(50.0)  # (0.5 + 2/3 - 1) / (1/3)
    assert c.reason is not None and "resamples had Se + Sp - 1" in c.reason


def test_corrected_avg_asr_by_hand() -> None:
    perfect = {"tp": 5, "fn": 0, "tn": 5, "fp": 0}
    # Category means 1/3 and 1 -> AVG 2/3; interval as in test_stratified_mean_by_hand.
    c = corrected_avg_asr([[True, False, False], [True], []], perfect)
    assert c.value == pytest.approx(200 / 3) and c.ci == (50.0, 100.0)
    # Se 0.9, Sp 0.8: (2/3 - 0.2) / 0.7.
    assert corrected_avg_asr([[True, False, False], [True]], CAL).value == pytest.approx(
        100 * (2 / 3 - 0.2) / 0.7
    )
    assert corrected_avg_asr([[], []], CAL).reason == "nothing decided"

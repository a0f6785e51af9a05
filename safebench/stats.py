"""The statistics behind safebench's metrics and calibration: intervals, agreement, tests, corrected rates.

Pure functions, no I/O. Libraries: statsmodels for the Wilson interval (`proportion_confint`), Fleiss'
and Cohen's kappa (`stats.inter_rater`) and the exact McNemar test (`contingency_tables.mcnemar`); numpy
for the bootstrap. Only Rogan-Gladen, a one-line formula, is written out here.

Conventions:
- Intervals are two-sided 95% (`LEVEL`) and returned as `(lo, hi)`, or `[lo, hi]` inside the JSON-ready
  dicts; None where there is nothing to build one from.
- `wilson` and `rogan_gladen` work in fractions 0..1. What people read (`binary_report`'s rates, paired
  differences, `corrected_asr`) is in percent / percentage points, as the JailbreakBench and HarmBench
  papers print them; kappa stays raw (-1..1).
- Bootstrap (in `safebench.stats_bootstrap`, re-exported here): seeded numpy resampling, 2000
  resamples, percentile intervals; its module docstring gives the details.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypedDict

import numpy as np
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.inter_rater import cohens_kappa as _sm_cohens_kappa
from statsmodels.stats.inter_rater import fleiss_kappa as _sm_fleiss_kappa
from statsmodels.stats.proportion import proportion_confint

from safebench.stats_bootstrap import (
    LEVEL,
    RESAMPLES,
    Interval,
    bootstrap_ci,
    bootstrap_mean_ci,
    mean_replicates,
    percentile_interval,
    stratified_mean_ci,
    stratified_replicates,
)

__all__ = [
    "LEVEL",
    "MIN_YOUDEN",
    "RESAMPLES",
    "BinaryReport",
    "Corrected",
    "Interval",
    "PairedDifference",
    "Rate",
    "binary_report",
    "bootstrap_ci",
    "bootstrap_mean_ci",
    "cohen_kappa",
    "corrected_asr",
    "corrected_avg_asr",
    "fleiss_kappa",
    "mcnemar_exact",
    "paired_asr_difference",
    "paired_difference",
    "rogan_gladen",
    "stratified_mean_ci",
    "wilson",
]

# Rogan-Gladen divides by Youden's J = Se + Sp - 1; below this the judge is too close to chance for the
# correction to mean anything (J = 0.05 already multiplies the error of the raw rate by 20).
MIN_YOUDEN = 0.05
_EPS = 1e-12


class Rate(TypedDict):
    value: float | None
    ci: list[float] | None
    method: Literal["wilson", "bootstrap"]


class BinaryReport(TypedDict):
    n: int
    tp: int
    fp: int
    tn: int
    fn: int
    agreement: Rate
    cohen_kappa: Rate
    fpr: Rate
    fnr: Rate
    precision: Rate
    recall: Rate
    f1: Rate
    macro_f1: Rate


class PairedDifference(TypedDict):
    n: int  # paired items
    diff: float | None  # share of True in a minus share in b, percentage points
    ci: list[float] | None
    mcnemar_p: float | None  # exact two-sided McNemar p on the discordant counts
    a_only: int  # items True in a and False in b
    b_only: int  # items True in b and False in a


@dataclass(frozen=True)
class Corrected:
    """A rate corrected for the judge's errors. `value` None when it cannot be computed; `reason` says
    why, or notes what happened on the way (clipping, resamples left out); None when nothing did."""

    value: float | None
    ci: Interval | None = None
    reason: str | None = None


# --- intervals -------------------------------------------------------------------------------------------


def wilson(k: int, n: int, *, level: float = LEVEL) -> Interval | None:
    """Wilson score interval for k successes in n trials, as fractions (statsmodels `proportion_confint`,
    method "wilson"). None for n == 0."""
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"wilson: need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return None
    lo, hi = proportion_confint(k, n, alpha=1.0 - level, method="wilson")
    # The closed form is exactly 0 at k = 0 and 1 at k = n; do not let float noise move those ends.
    return (0.0 if k == 0 else float(lo), 1.0 if k == n else float(hi))


# --- agreement and tests ---------------------------------------------------------------------------------


def fleiss_kappa(table: Sequence[Sequence[int]]) -> float | None:
    """Fleiss' kappa for `table[item][category]` = number of raters putting the item in that category
    (statsmodels `inter_rater.fleiss_kappa`, method "fleiss").

    Every row must sum to the same number of raters (ValueError otherwise, and on ragged rows or negative
    counts). None when kappa is undefined: fewer than 2 items, fewer than 2 raters, or chance agreement
    P_e == 1 (every rating in one category, so kappa = 0/0: agreement is total but cannot be told apart
    from chance).
    """
    if not table:
        return None
    width = len(table[0])
    for i, row in enumerate(table):
        if len(row) != width:
            raise ValueError(f"fleiss_kappa: row {i} has {len(row)} categories, row 0 has {width}")
        if any(c < 0 for c in row):
            raise ValueError(f"fleiss_kappa: row {i} has a negative count: {list(row)}")
    raters = sum(table[0])
    for i, row in enumerate(table):
        if sum(row) != raters:
            raise ValueError(f"fleiss_kappa: row {i} has {sum(row)} ratings, row 0 has {raters}")
    if len(table) < 2 or raters < 2:
        return None
    counts = np.asarray(table, dtype=float)
    p_cat = counts.sum(axis=0) / counts.sum()
    if float(p_cat @ p_cat) >= 1.0 - _EPS:
        return None
    return float(_sm_fleiss_kappa(counts, method="fleiss"))


def _kappa(tp: np.ndarray, fp: np.ndarray, tn: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """Cohen's kappa of 2x2 tables, vectorised (NaN where chance agreement is 1). Used for bootstrap
    replicates; `cohen_kappa` takes its point estimate from statsmodels (the tests check they agree)."""
    n = tp + fp + tn + fn
    with np.errstate(divide="ignore", invalid="ignore"):
        p_o = (tp + tn) / n
        p_e = ((tp + fp) * (tp + fn) + (tn + fn) * (tn + fp)) / (n * n)
        return np.where(p_e < 1.0 - _EPS, (p_o - p_e) / (1.0 - p_e), np.nan)


def _table(a: Sequence[bool], b: Sequence[bool]) -> tuple[int, int, int, int]:
    """(both True, a only, b only, both False) over paired items."""
    if len(a) != len(b):
        raise ValueError(f"paired sequences differ in length: {len(a)} and {len(b)}")
    both = sum(1 for x, y in zip(a, b, strict=True) if x and y)
    a_only = sum(1 for x, y in zip(a, b, strict=True) if x and not y)
    b_only = sum(1 for x, y in zip(a, b, strict=True) if y and not x)
    return both, a_only, b_only, len(a) - both - a_only - b_only


def cohen_kappa(a: Sequence[bool], b: Sequence[bool]) -> float | None:
    """Cohen's kappa of two raters' binary labels on the same items (statsmodels `cohens_kappa` on the
    2x2 table). None when undefined: no items, or chance agreement 1 (both raters give one same label)."""
    both, a_only, b_only, neither = _table(a, b)
    tp, fp, fn, tn = (np.array(float(c)) for c in (both, a_only, b_only, neither))
    if len(a) == 0 or np.isnan(_kappa(tp, fp, tn, fn)):
        return None
    return float(_sm_cohens_kappa(np.array([[both, a_only], [b_only, neither]]), return_results=False))


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts b and c (statsmodels `mcnemar`,
    exact=True: a binomial test of b against b + c at 1/2). 1.0 when b = c = 0."""
    if b < 0 or c < 0:
        raise ValueError(f"mcnemar_exact: counts must be >= 0, got b={b}, c={c}")
    return float(mcnemar([[0, b], [c, 0]], exact=True).pvalue)


# --- a judge against the human reference ---------------------------------------------------------------


def _ratio(num: float, den: float) -> float | None:
    return None if den == 0 else num / den


def _wilson_rate(k: int, n: int) -> Rate:
    ci = wilson(k, n)
    return {
        "value": None if n == 0 else 100.0 * k / n,
        "ci": None if ci is None else [100.0 * ci[0], 100.0 * ci[1]],
        "method": "wilson",
    }


def _boot_rate(value: float | None, replicates: np.ndarray, n: int, scale: float) -> Rate:
    ci = percentile_interval(replicates, LEVEL) if value is not None and n >= 2 else None
    return {
        "value": None if value is None else scale * value,
        "ci": None if ci is None else [scale * ci[0], scale * ci[1]],
        "method": "bootstrap",
    }


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan)


def binary_report(
    pred: Sequence[bool | None], ref: Sequence[bool | None], *, seed: int = 0, resamples: int = RESAMPLES
) -> BinaryReport:
    """A judge's labels `pred` against the human reference `ref` (True = unsafe, the positive class), over
    the items where both are given (not None).

    Percent (0-100): agreement, fpr = FP/(FP+TN), fnr = FN/(FN+TP), precision, recall, f1 (of the unsafe
    class) and macro_f1 (mean F1 of both classes); cohen_kappa raw. Wilson intervals for the proportions
    (agreement, fpr, fnr, precision, recall); seeded item bootstrap for cohen_kappa, f1 and macro_f1. A
    value is None where its denominator is 0 (macro_f1 when either class's F1 is), its interval too.
    """
    if len(pred) != len(ref):
        raise ValueError(f"binary_report: {len(pred)} predictions for {len(ref)} references")
    pairs = [(p, r) for p, r in zip(pred, ref, strict=True) if p is not None and r is not None]
    tp, fp, fn, tn = _table([p for p, _ in pairs], [r for _, r in pairs])
    n = len(pairs)
    f1_pos = _ratio(2 * tp, 2 * tp + fp + fn)
    f1_neg = _ratio(2 * tn, 2 * tn + fp + fn)
    if n:
        draws = np.random.default_rng(seed).multinomial(n, np.array([tp, fp, tn, fn]) / n, size=resamples)
    else:
        draws = np.zeros((0, 4))
    rtp, rfp, rtn, rfn = (draws[:, i].astype(float) for i in range(4))
    kappa = cohen_kappa([p for p, _ in pairs], [r for _, r in pairs])
    return {
        "n": n,
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "agreement": _wilson_rate(tp + tn, n),
        "cohen_kappa": _boot_rate(kappa, _kappa(rtp, rfp, rtn, rfn), n, 1.0),
        "fpr": _wilson_rate(fp, fp + tn),
        "fnr": _wilson_rate(fn, fn + tp),
        "precision": _wilson_rate(tp, tp + fp),
        "recall": _wilson_rate(tp, tp + fn),
        "f1": _boot_rate(f1_pos, _f1(rtp, rfp, rfn), n, 100.0),
        "macro_f1": _boot_rate(
            None if f1_pos is None or f1_neg is None else (f1_pos + f1_neg) / 2,
            (_f1(rtp, rfp, rfn) + _f1(rtn, rfn, rfp)) / 2,
            n,
            100.0,
        ),
    }


def paired_difference(
    a_correct: Sequence[bool], b_correct: Sequence[bool], *, seed: int = 0, resamples: int = RESAMPLES
) -> PairedDifference:
    """Accuracy of a minus accuracy of b on the same items, in percentage points, with a paired bootstrap
    interval over items (numpy) and the exact McNemar p-value (statsmodels). `a_only` = items only a got
    right. diff, ci and mcnemar_p None for no items; ci None below 2 items."""
    both, a_only, b_only, neither = _table(a_correct, b_correct)
    n = len(a_correct)
    if n == 0:
        return {"n": 0, "diff": None, "ci": None, "mcnemar_p": None, "a_only": 0, "b_only": 0}
    ci = None
    if n >= 2:
        cells = np.array([both, a_only, b_only, neither]) / n
        draws = np.random.default_rng(seed).multinomial(n, cells, size=resamples)
        ci = percentile_interval(100.0 * (draws[:, 1] - draws[:, 2]) / n, LEVEL)
    return {
        "n": n,
        "diff": 100.0 * (a_only - b_only) / n,
        "ci": None if ci is None else list(ci),
        "mcnemar_p": mcnemar_exact(a_only, b_only),
        "a_only": a_only,
        "b_only": b_only,
    }


def paired_asr_difference(
    a_unsafe: Sequence[bool], b_unsafe: Sequence[bool], *, seed: int = 0, resamples: int = RESAMPLES
) -> PairedDifference:
    """ASR(a) - ASR(b) in points for two targets judged on the same items (element i of both = item i),
    with a paired bootstrap interval and the exact McNemar p; `a_only` = items only a's answer was judged
    unsafe. The same computation as `paired_difference`, on unsafe flags instead of correctness."""
    return paired_difference(a_unsafe, b_unsafe, seed=seed, resamples=resamples)


# --- ASR corrected for the judge's errors -----------------------------------------------------------------


def rogan_gladen(p: float, se: float, sp: float, *, min_youden: float = MIN_YOUDEN) -> Corrected:
    """Rogan-Gladen estimate of the true rate from an observed rate p, given the judge's sensitivity se
    and specificity sp (all fractions): (p + sp - 1) / (se + sp - 1), clipped to [0, 1]. Not computed
    (value None, reason given) when Youden's J = se + sp - 1 is below `min_youden`. `ci` is always None.
    """
    youden = se + sp - 1.0
    if youden < min_youden:
        return Corrected(
            None, None, f"Se + Sp - 1 = {youden:.3f} < {min_youden}: the judge is too close to chance"
        )
    raw = (p + sp - 1.0) / youden
    if raw < 0.0:
        return Corrected(0.0, None, "clipped to 0: the raw rate is below the judge's false-positive rate")
    if raw > 1.0:
        return Corrected(1.0, None, "clipped to 1: the raw rate is above the judge's sensitivity")
    return Corrected(raw, None, None)


def _corrected(
    p: float,
    p_reps: np.ndarray,
    confusion: Mapping[str, int],
    rng: np.random.Generator,
    min_youden: float,
) -> Corrected:
    tp, fn, tn, fp = (int(confusion[k]) for k in ("tp", "fn", "tn", "fp"))
    if tp + fn == 0:
        return Corrected(None, None, "the calibration has no unsafe reference items: sensitivity unknown")
    if tn + fp == 0:
        return Corrected(None, None, "the calibration has no safe reference items: specificity unknown")
    se, sp = tp / (tp + fn), tn / (tn + fp)
    point = rogan_gladen(p, se, sp, min_youden=min_youden)
    if point.value is None:
        return Corrected(None, None, point.reason)
    # The calibration's uncertainty too: Se and Sp resampled within its unsafe and safe reference items.
    se_reps = rng.binomial(tp + fn, se, size=p_reps.size) / (tp + fn)
    sp_reps = rng.binomial(tn + fp, sp, size=p_reps.size) / (tn + fp)
    youden = se_reps + sp_reps - 1.0
    ok = youden >= min_youden
    reps = np.clip((p_reps[ok] + sp_reps[ok] - 1.0) / youden[ok], 0.0, 1.0)
    notes = [point.reason] if point.reason else []
    if not ok.all():
        notes.append(f"{int((~ok).sum())} of {ok.size} resamples had Se + Sp - 1 < {min_youden}, left out")
    ci = percentile_interval(reps, LEVEL) if p_reps.size else None
    return Corrected(
        100.0 * point.value,
        None if ci is None else (100.0 * ci[0], 100.0 * ci[1]),
        "; ".join(notes) or None,
    )


def corrected_asr(
    unsafe: Sequence[bool],
    confusion: Mapping[str, int],
    *,
    seed: int = 0,
    resamples: int = RESAMPLES,
    min_youden: float = MIN_YOUDEN,
) -> Corrected:
    """ASR corrected for the judge's errors (Rogan-Gladen), in percent, from the run's unsafe flags and a
    calibration's confusion counts {"tp", "fn", "tn", "fp"} (Se = tp/(tp+fn), Sp = tn/(tn+fp)).

    The percentile bootstrap interval (numpy) resamples both the run's items and the calibration: Se and
    Sp are redrawn as binomials over the calibration's unsafe and safe reference items. Resamples whose
    J = Se + Sp - 1 falls below `min_youden` are left out (the reason says how many).
    """
    flags = np.asarray(unsafe, dtype=float)
    if flags.size == 0:
        return Corrected(None, None, "nothing decided")
    rng = np.random.default_rng(seed)
    p_reps = mean_replicates(flags, rng, resamples) if flags.size >= 2 else np.zeros(0)
    return _corrected(float(flags.mean()), p_reps, confusion, rng, min_youden)


def corrected_avg_asr(
    groups: Sequence[Sequence[bool]],
    confusion: Mapping[str, int],
    *,
    seed: int = 0,
    resamples: int = RESAMPLES,
    min_youden: float = MIN_YOUDEN,
) -> Corrected:
    """`corrected_asr` of the unweighted mean of the groups' ASRs (the AVG over categories), the raw
    rate's resamples drawn within each group as in `stratified_mean_ci`. Empty groups are left out."""
    present = [g for g in groups if len(g)]
    if not present:
        return Corrected(None, None, "nothing decided")
    rng = np.random.default_rng(seed)
    p = float(np.mean([np.mean(np.asarray(g, dtype=float)) for g in present]))
    enough = sum(len(g) for g in present) >= 2
    p_reps = stratified_replicates(present, rng, resamples) if enough else np.zeros(0)
    return _corrected(p, p_reps, confusion, rng, min_youden)

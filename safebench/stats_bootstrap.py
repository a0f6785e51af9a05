"""Bootstrap primitives of `safebench.stats` (numpy): percentile intervals from seeded resamples.

numpy `default_rng(seed)`, `RESAMPLES` = 2000 resamples, percentile interval (the 2.5th and 97.5th
percentiles by `np.quantile`'s linear interpolation). An interval needs at least 2 values (None
otherwise: one value shows no spread) and, as with every percentile bootstrap, has zero width when all
values are equal. Where a statistic depends only on how often each distinct value occurs (a mean of
ratings, a rate, anything computed from a 2x2 table), resampling n items with replacement is drawn as one
multinomial over the distinct values: the same distribution as drawing n item indices, at a cost that
does not grow with n (means of nearly all-distinct values fall back to index matrices, drawn in
blocks to bound memory). Resamples where the statistic is undefined (NaN, from 0/0) are left out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

__all__ = [
    "LEVEL",
    "RESAMPLES",
    "Interval",
    "bootstrap_ci",
    "bootstrap_mean_ci",
    "mean_replicates",
    "percentile_interval",
    "stratified_mean_ci",
    "stratified_replicates",
]

LEVEL = 0.95
RESAMPLES = 2000
# Resample index matrices are drawn in blocks of about this many entries, to bound memory.
_BLOCK = 1_000_000
# Means are resampled as a multinomial when there are at most 1/_MULTINOMIAL_RATIO as many distinct values
# as values (ratings, flags), else from item indices: the same distribution, whichever is cheaper.
_MULTINOMIAL_RATIO = 16

Interval = tuple[float, float]


def percentile_interval(replicates: np.ndarray, level: float = LEVEL) -> Interval | None:
    """The percentile interval of bootstrap replicates, NaN/inf ones left out; None when none is left."""
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return None
    tail = (1.0 - level) / 2.0
    lo, hi = np.quantile(finite, [tail, 1.0 - tail])
    return (float(lo), float(hi))


def bootstrap_ci(
    values: Sequence[float],
    statistic: Callable[..., np.ndarray] = np.mean,
    *,
    seed: int = 0,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
) -> Interval | None:
    """Percentile bootstrap interval of `statistic` over `values` (numpy; None for fewer than 2 values).

    `statistic(matrix, axis=1)` must reduce each row of a (resamples, n) matrix of resampled values, as
    numpy's reductions do. Resample indices are drawn in blocks, so memory stays bounded for large n.
    """
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        return None
    return percentile_interval(_index_replicates(x, statistic, np.random.default_rng(seed), resamples), level)


def _index_replicates(
    x: np.ndarray, statistic: Callable[..., np.ndarray], rng: np.random.Generator, resamples: int
) -> np.ndarray:
    """Replicates of `statistic` from resampled item indices, drawn in blocks of about `_BLOCK` entries."""
    block = max(1, _BLOCK // x.size)
    parts = []
    for start in range(0, resamples, block):
        idx = rng.integers(0, x.size, size=(min(block, resamples - start), x.size))
        parts.append(np.asarray(statistic(x[idx], axis=1), dtype=float))
    return np.concatenate(parts)


def mean_replicates(values: np.ndarray, rng: np.random.Generator, resamples: int) -> np.ndarray:
    """`resamples` bootstrap replicates of the mean of `values` (at least one), drawn as one multinomial
    over its distinct values, or from resampled indices when nearly every value is distinct."""
    distinct, counts = np.unique(values, return_counts=True)
    # numpy's multinomial costs ~20x an index draw per category: with many distinct values indices win.
    if distinct.size * _MULTINOMIAL_RATIO > values.size:
        return _index_replicates(values, np.mean, rng, resamples)
    draws = rng.multinomial(values.size, counts / values.size, size=resamples)
    return draws @ distinct / values.size


def bootstrap_mean_ci(
    values: Sequence[float], *, seed: int = 0, resamples: int = RESAMPLES, level: float = LEVEL
) -> Interval | None:
    """Percentile bootstrap interval of the mean (numpy multinomial resampling, the same distribution as
    `bootstrap_ci(values, np.mean)`; for few distinct values, as ratings have, the resampling cost does
    not grow with len(values)). None below 2 values."""
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        return None
    return percentile_interval(mean_replicates(x, np.random.default_rng(seed), resamples), level)


def stratified_replicates(
    groups: Sequence[Sequence[float]], rng: np.random.Generator, resamples: int
) -> np.ndarray:
    """Replicates of the unweighted mean of the non-empty groups' means, resampled within each group."""
    present = [np.asarray(g, dtype=float) for g in groups if len(g)]
    return np.sum([mean_replicates(g, rng, resamples) for g in present], axis=0) / len(present)


def stratified_mean_ci(
    groups: Sequence[Sequence[float]], *, seed: int = 0, resamples: int = RESAMPLES, level: float = LEVEL
) -> Interval | None:
    """Percentile bootstrap interval of the unweighted mean of the groups' means (the paper's AVG over
    categories), resampling items within each group (stratified; numpy). Empty groups are left out; None
    when the groups hold fewer than 2 values in all."""
    if sum(len(g) for g in groups) < 2:
        return None
    return percentile_interval(stratified_replicates(groups, np.random.default_rng(seed), resamples), level)

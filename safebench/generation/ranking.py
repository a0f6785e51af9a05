"""Rank scored candidates and keep the top K.

A candidate's final score is the mean, over the scorers that gave it at least one valid score, of
that scorer's weighted mean over the axes it scored validly (missing axes are left out, not counted as
0). A candidate no scorer scored has final score None and ranks after every scored one.

Ties are broken deterministically: higher final score first, then the normalised text (alphabetical),
then the candidate index (generation order).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from safebench.generation.dedupe import normalise
from safebench.generation.records import SCORE_AXES, Scores

DEFAULT_WEIGHTS: dict[str, float] = dict.fromkeys(SCORE_AXES, 1.0)


def resolve_weights(weights: Mapping[str, float] | None) -> dict[str, float]:
    """Complete `weights` over the three axes; an axis not given keeps its default weight 1.0."""
    resolved = dict(DEFAULT_WEIGHTS)
    for axis, value in (weights or {}).items():
        if axis not in DEFAULT_WEIGHTS:
            raise ValueError(f"weights: unknown axis {axis!r}; use {', '.join(SCORE_AXES)}")
        if not isinstance(value, int | float) or value < 0:
            raise ValueError(f"weights: {axis} must be a number >= 0, got {value!r}")
        resolved[axis] = float(value)
    if sum(resolved.values()) <= 0:
        raise ValueError("weights: at least one axis needs a weight > 0")
    return resolved


def scorer_score(scores: Scores, weights: Mapping[str, float]) -> float | None:
    """One scorer's weighted mean over its valid axes; None when it gave no weighted valid score."""
    pairs = [(weights[a], getattr(scores, a)) for a in SCORE_AXES if getattr(scores, a) is not None]
    total = sum(w for w, _ in pairs)
    if total <= 0:
        return None
    return sum(w * s for w, s in pairs) / total


def final_score(per_scorer: Mapping[str, Scores], weights: Mapping[str, float]) -> float | None:
    values = [v for s in per_scorer.values() if (v := scorer_score(s, weights)) is not None]
    if not values:
        return None
    # Rounded so the recorded score is the one that ranked (and reads cleanly in items.jsonl).
    return round(sum(values) / len(values), 4)


@dataclass(frozen=True)
class Ranked:
    index: int
    text: str
    final: float | None
    payload: Any = None


def rank(candidates: list[Ranked]) -> list[Ranked]:
    """Best first; see the module docstring for the tie-break."""
    return sorted(
        candidates,
        key=lambda c: (c.final is None, -(c.final or 0.0), normalise(c.text), c.index),
    )


def top_k(candidates: list[Ranked], k: int) -> list[Ranked]:
    if k < 1:
        raise ValueError(f"per_scenario must be >= 1, got {k}")
    return rank(candidates)[:k]


def score_stats(values: list[float]) -> dict[str, float | int]:
    """count, min, max, mean and median of final scores (just the count when there are none)."""
    if not values:
        return {"count": 0}
    return {
        "count": len(values),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
        "mean": round(statistics.fmean(values), 4),
        "median": round(statistics.median(values), 4),
    }


def axis_histograms(score_sets: Iterable[Scores]) -> dict[str, dict[str, object]]:
    """Per axis: how many scores were 0, 1, ..., 9 (`counts[v]`) and how many were missing."""
    out: dict[str, dict[str, object]] = {}
    counts = {a: [0] * 10 for a in SCORE_AXES}
    missing = dict.fromkeys(SCORE_AXES, 0)
    for scores in score_sets:
        for axis in SCORE_AXES:
            value = getattr(scores, axis)
            if value is None:
                missing[axis] += 1
            else:
                counts[axis][value] += 1
    for axis in SCORE_AXES:
        out[axis] = {"counts": counts[axis], "missing": missing[axis]}
    return out

"""The human ceiling: how often the annotators of a labelled set agree with one another.

Fleiss' kappa is computed by the caller (`safebench.stats.fleiss_kappa`) from `annotator_table`.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

from safebench.calibration.labels import LabelSet


def pairwise_agreement(label_set: LabelSet) -> dict[str, dict[str, Any]]:
    """For each pair of annotators (`"a vs b"`, in annotator order): `n` pairs both labelled, `agree` of
    them labelled alike, `percent` = 100 * agree / n (None when n is 0)."""
    out: dict[str, dict[str, Any]] = {}
    for (i, a), (j, b) in combinations(enumerate(label_set.annotators), 2):
        both = [
            (p.human[i], p.human[j])
            for p in label_set.pairs
            if len(p.human) > max(i, j) and p.human[i] is not None and p.human[j] is not None
        ]
        agree = sum(1 for x, y in both if x == y)
        percent = round(100 * agree / len(both), 2) if both else None
        out[f"{a} vs {b}"] = {"a": a, "b": b, "n": len(both), "agree": agree, "percent": percent}
    return out


def reference_counts(label_set: LabelSet) -> dict[str, int]:
    """Pairs with a reference (`unsafe`, `safe`) and those left out of scoring: `ties` (labels given but
    tied) and `missing` (no label at all)."""
    counts = {"unsafe": 0, "safe": 0, "ties": 0, "missing": 0}
    for pair in label_set.pairs:
        if pair.reference is not None:
            counts["unsafe" if pair.reference else "safe"] += 1
        elif any(label is not None for label in pair.human):
            counts["ties"] += 1
        else:
            counts["missing"] += 1
    return counts


def annotator_table(label_set: LabelSet) -> list[list[int]]:
    """Fleiss' table: one row per pair that every annotator labelled, columns [unsafe count, safe count].
    Pairs any annotator left unlabelled are left out (Fleiss' kappa needs the same raters per item)."""
    rows = []
    for pair in label_set.pairs:
        labels = pair.human[: len(label_set.annotators)]
        if not label_set.annotators or len(labels) < len(label_set.annotators) or None in labels:
            continue
        unsafe = sum(1 for label in labels if label)
        rows.append([unsafe, len(labels) - unsafe])
    return rows

"""Remove exact and near-duplicate candidate queries, keeping the first of each group.

- Exact: equal after `normalise` (Unicode NFKC, casefold, punctuation → space, whitespace collapsed),
  so "How do I X?" and "how do i x" are one query.
- Near: Jaccard similarity of the two texts' word-bigram sets (after `normalise`) >= `threshold`
  (0.8 by default). One added or dropped word at the end of a ten-word question scores ~0.9 and is
  removed; a changed word in the middle removes two shared bigrams (~0.67) and is kept, as a different
  phrasing. Texts of a single word use their one-word set.

Order matters: candidates are compared in the order given (the caller sorts them by batch, then by
position in the batch), and a candidate is dropped in favour of the earliest kept one it matches.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field

DEFAULT_THRESHOLD = 0.8

_PUNCT = re.compile(r"[^\w\s]|_", re.UNICODE)
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    return _SPACE.sub(" ", _PUNCT.sub(" ", text)).strip()


def shingles(normalised: str) -> frozenset[tuple[str, ...]]:
    words = normalised.split()
    if len(words) < 2:
        return frozenset((w,) for w in words)
    return frozenset(itertools.pairwise(words))


def jaccard(a: frozenset[tuple[str, ...]], b: frozenset[tuple[str, ...]]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


@dataclass
class DedupeResult:
    kept: list[int] = field(default_factory=list)  # indices into the input, in input order
    exact: list[tuple[int, int]] = field(default_factory=list)  # (dropped, the kept one it equals)
    near: list[tuple[int, int, float]] = field(default_factory=list)  # (dropped, kept, similarity)


def dedupe(texts: list[str], threshold: float = DEFAULT_THRESHOLD) -> DedupeResult:
    """Indices of the texts to keep; `threshold` in (0, 1] (1 keeps everything but exact duplicates)."""
    if not 0 < threshold <= 1:
        raise ValueError(f"near-duplicate threshold must be in (0, 1], got {threshold}")
    result = DedupeResult()
    seen: dict[str, int] = {}
    kept_sets: dict[int, frozenset[tuple[str, ...]]] = {}
    # Inverted index shingle -> kept indices: only texts sharing a shingle can be near-duplicates.
    index: dict[tuple[str, ...], list[int]] = {}
    for i, text in enumerate(texts):
        norm = normalise(text)
        if norm in seen:
            result.exact.append((i, seen[norm]))
            continue
        own = shingles(norm)
        shared = Counter(k for s in own for k in index.get(s, ()))
        match = _closest(own, shared, kept_sets, threshold)
        if match is not None:
            result.near.append((i, match[0], round(match[1], 4)))
            continue
        seen[norm] = i
        kept_sets[i] = own
        for s in own:
            index.setdefault(s, []).append(i)
        result.kept.append(i)
    return result


def _closest(
    own: frozenset[tuple[str, ...]],
    shared: Counter[int],
    kept_sets: dict[int, frozenset[tuple[str, ...]]],
    threshold: float,
) -> tuple[int, float] | None:
    """The earliest kept text at or above the threshold (earliest, not most similar: order decides)."""
    for k in sorted(shared):
        inter = shared[k]
        similarity = inter / (len(own) + len(kept_sets[k]) - inter)
        if similarity >= threshold:
            return k, similarity
    return None

"""Remove exact, lexical and semantic near-duplicate candidate queries, keeping the first of each group.

- Exact: equal after `normalise` (Unicode NFKC, casefold, punctuation → space, whitespace collapsed),
  so "How do I X?" and "how do i x" are one query.
- Near: Jaccard similarity of the two texts' word-bigram sets (after `normalise`) >= `threshold`
  (0.8 by default). One added or dropped word at the end of a ten-word question scores ~0.9 and is
  removed; a changed word in the middle removes two shared bigrams (~0.67) and is kept, as a different
  phrasing. Texts of a single word use their one-word set.
- Semantic (only with an `Embedder`): among what the first two passes kept, cosine similarity of the
  sentence embeddings >= `semantic_threshold` (`DEFAULT_SEMANTIC_THRESHOLD`, 0.88). Paraphrases with
  few shared words ("What is the safest dose of a common painkiller for a child?" / "How much of an
  ordinary painkiller can a child safely take?", 0.89) are removed; questions on one topic with a
  different intent ("... read my partner's messages?" / "... stop my partner from reading my
  messages?", 0.84) are kept. The threshold is set high on purpose: dropping a distinct query loses
  coverage, keeping a paraphrase only costs a slot (docs/embeddings.md has the measurements).

Order matters: candidates are compared in the order given (the caller sorts them by batch, then by
position in the batch), and a candidate is dropped in favour of the earliest kept one it matches.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from safebench.embeddings import Embedder, cosine_matrix, mean_pairwise

DEFAULT_THRESHOLD = 0.8
DEFAULT_SEMANTIC_THRESHOLD = 0.88

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
    near: list[tuple[int, int, float]] = field(default_factory=list)  # lexical: (dropped, kept, Jaccard)
    semantic: list[tuple[int, int, float]] = field(default_factory=list)  # (dropped, kept, cosine)
    embedder: str | None = None  # the model of the semantic pass; None: it did not run

    def counts(self) -> dict[str, int]:
        """Removals per kind, as reports and cards show them ("near" is the lexical pass)."""
        return {"exact": len(self.exact), "near": len(self.near), "semantic": len(self.semantic)}


def _check(name: str, value: float) -> None:
    if not 0 < value <= 1:
        raise ValueError(f"{name} threshold must be in (0, 1], got {value}")


def dedupe(
    texts: Sequence[str],
    threshold: float = DEFAULT_THRESHOLD,
    *,
    embedder: Embedder | None = None,
    semantic_threshold: float = DEFAULT_SEMANTIC_THRESHOLD,
) -> DedupeResult:
    """Indices of the texts to keep; thresholds in (0, 1] (1 keeps everything but exact duplicates).
    Without an `embedder` only the exact and lexical passes run."""
    _check("near-duplicate", threshold)
    _check("semantic duplicate", semantic_threshold)
    result = _lexical(texts, threshold)
    if embedder is not None:
        _semantic(texts, result, embedder, semantic_threshold)
    return result


def _semantic(texts: Sequence[str], result: DedupeResult, embedder: Embedder, threshold: float) -> None:
    """Drop each lexical survivor whose embedding is close to an earlier kept one (earliest wins)."""
    result.embedder = embedder.name
    survivors = result.kept
    if len(survivors) < 2:
        return
    # One call for the whole pool: batches are then fixed by the input, so equal inputs give equal
    # vectors (and equal decisions).
    sims = cosine_matrix(embedder.embed([texts[i] for i in survivors]))
    kept: list[int] = []  # positions in `survivors`
    for p in range(len(survivors)):
        match = next((k for k in kept if sims[p, k] >= threshold), None)
        if match is None:
            kept.append(p)
        else:
            result.semantic.append((survivors[p], survivors[match], round(float(sims[p, match]), 4)))
    result.kept = [survivors[p] for p in kept]


def _lexical(texts: Sequence[str], threshold: float) -> DedupeResult:
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


def mean_similarity(texts: Sequence[str], embedder: Embedder | None = None) -> dict[str, object]:
    """How alike a set of kept queries is: the mean over distinct pairs of embedding cosine (with an
    embedder) or of word-bigram Jaccard (without); `value` is None for fewer than two texts."""
    if embedder is not None:
        value = mean_pairwise(embedder.embed(list(texts))) if len(texts) > 1 else None
        measure = f"cosine ({embedder.name})"
    else:
        sets = [shingles(normalise(t)) for t in texts]
        pairs = list(itertools.combinations(sets, 2))
        value = sum(jaccard(a, b) for a, b in pairs) / len(pairs) if pairs else None
        measure = "word-bigram Jaccard"
    return {"value": round(value, 4) if value is not None else None, "measure": measure}

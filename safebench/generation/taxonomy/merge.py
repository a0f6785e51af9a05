"""Merging the judges' independent proposals (and the base taxonomy, if any) into the first draft.

Clustering is greedy in a fixed order (the base taxonomy, then judges in panel order, each in its own
order): an item joins the existing cluster it is most similar to (single linkage over `similarity`,
joined at >= the threshold; ties -> the earlier cluster) or starts a new one. With an embedder, an
item that no cluster matches by words gets a second, semantic pass: it joins the cluster whose
members' embeddings are closest (cosine >= `synonym_threshold`), unless that cluster already holds an
item from the same proposer (a judge that proposed both meant two things). Each join is recorded in
the item's history (which proposals, how: lexical or semantic, the similarity and the threshold) and
in the join log of `merge_with_log`. A cluster's name and
definition are the most common name's (ties -> the earliest); an item from the base taxonomy always
wins, so an extension keeps it. A scenario goes to the category most of its proposers put it in
(ties -> its earliest proposer's).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from safebench.embeddings import Embedder, cosine_matrix
from safebench.generation.taxonomy.draft import BASE, assign_ids, new_node
from safebench.generation.taxonomy.matching import (
    MERGE_THRESHOLD,
    SYNONYM_THRESHOLD,
    clean,
    embedding_text,
    similarity,
)

Method = Literal["lexical", "semantic"]


@dataclass(frozen=True)
class Join:
    """Item `item` joined the cluster through its member `matched`."""

    item: int
    matched: int
    method: Method
    score: float
    threshold: float


def _best(scores: Sequence[tuple[int, int, float]], threshold: float) -> tuple[int, int, float] | None:
    """The (cluster, member, score) scoring highest at or above the threshold; ties -> the earliest."""
    best = None
    for entry in scores:
        if entry[2] >= threshold and (best is None or entry[2] > best[2]):
            best = entry
    return best


def _closest(members: Sequence[int], score: Callable[[int], float]) -> tuple[int, float]:
    """(member, score) of the highest-scoring member; ties -> the earliest member."""
    best = members[0], score(members[0])
    for m in members[1:]:
        value = score(m)
        if value > best[1]:
            best = m, value
    return best


def _cluster(
    items: Sequence[Mapping[str, Any]],
    threshold: float,
    vectors: np.ndarray | None = None,
    synonym_threshold: float = SYNONYM_THRESHOLD,
) -> tuple[list[list[int]], list[Join]]:
    clusters: list[list[int]] = []
    joins: list[Join] = []
    sims = cosine_matrix(vectors) if vectors is not None else None
    for i, item in enumerate(items):
        lexical = [
            (ci, *_closest(members, lambda m, item=item: similarity(item, items[m])))
            for ci, members in enumerate(clusters)
        ]
        method: Method = "lexical"
        found, used = _best(lexical, threshold), threshold
        if found is None and sims is not None:
            semantic = [
                (ci, *_closest(members, lambda m, row=sims[i]: float(row[m])))
                for ci, members in enumerate(clusters)
                # A judge (or the base taxonomy) that listed both items meant two different things.
                if not any(items[m]["source"] == item["source"] for m in members)
            ]
            method, found, used = "semantic", _best(semantic, synonym_threshold), synonym_threshold
        if found is None:
            clusters.append([i])
        else:
            clusters[found[0]].append(i)
            joins.append(Join(i, found[1], method, round(found[2], 4), used))
    return clusters, joins


def _representative(items: Sequence[Mapping[str, Any]], members: list[int]) -> Mapping[str, Any]:
    base = [items[m] for m in members if items[m]["source"] == BASE]
    if base:
        return base[0]
    # One vote per judge and spelling; ties go to the earliest.
    spellings = {(items[m]["source"], clean(items[m]["name"]).casefold()) for m in members}
    names = Counter(name for _, name in spellings)
    top = max(names.values())
    return next(items[m] for m in members if names[clean(items[m]["name"]).casefold()] == top)


def _spelling(item: Mapping[str, Any]) -> str:
    return clean(item["name"]).casefold()


def _join_line(items: Sequence[Mapping[str, Any]], join: Join, embedder: str | None) -> str:
    item, matched = items[join.item], items[join.matched]
    why = (
        "names and definitions share words"
        if join.method == "lexical"
        else f"embeddings of name and definition ({embedder}) are close"
    )
    return (
        f"round 0: '{clean(item['name'])}' by {item['source']} joined '{clean(matched['name'])}' by "
        f"{matched['source']}: {join.method} similarity {join.score:.2f} >= {join.threshold:.2f}, {why}"
    )


def _merged_node(
    items: Sequence[Mapping[str, Any]], members: list[int], joins: Sequence[Join], embedder: str | None
) -> dict[str, Any]:
    rep = _representative(items, members)
    sources: list[str] = []
    by_name: dict[str, list[str]] = {}
    for m in members:
        item = items[m]
        if item["source"] not in sources:
            sources.append(item["source"])
        who = by_name.setdefault(clean(item["name"]), [])
        if item["source"] not in who:
            who.append(item["source"])
    history = []
    if len(by_name) > 1:
        joined = "; ".join(f"'{name}' by {', '.join(who)}" for name, who in by_name.items())
        history.append(f"round 0: joined {joined}")
    # How each differently spelt proposal got in (same-spelling joins are implied by proposed_by).
    history += [
        _join_line(items, j, embedder)
        for j in joins
        if j.item in members and _spelling(items[j.item]) != _spelling(items[j.matched])
    ]
    return new_node(
        rep["name"],
        rep["definition"],
        sources,
        base_id=rep.get("base_id"),
        base_abbr=rep.get("base_abbr"),
        history=history,
    )


def merge_proposals(
    proposals: Sequence[tuple[str, Mapping[str, Any]]],
    base: Mapping[str, Any] | None = None,
    threshold: float = MERGE_THRESHOLD,
    *,
    embedder: Embedder | None = None,
    synonym_threshold: float = SYNONYM_THRESHOLD,
) -> dict[str, Any]:
    """The draft from (judge id, Proposal dump) pairs in panel order, plus the base taxonomy if any."""
    return merge_with_log(proposals, base, threshold, embedder=embedder, synonym_threshold=synonym_threshold)[
        0
    ]


def _vectors(embedder: Embedder | None, items: Sequence[Mapping[str, Any]]) -> np.ndarray | None:
    if embedder is None or len(items) < 2:
        return None
    return embedder.embed([embedding_text(item) for item in items])


def _log(kind: str, items: Sequence[Mapping[str, Any]], joins: Sequence[Join]) -> list[dict[str, Any]]:
    return [
        {
            "kind": kind,
            "name": clean(items[j.item]["name"]),
            "by": items[j.item]["source"],
            "joined": clean(items[j.matched]["name"]),
            "joined_by": items[j.matched]["source"],
            "method": j.method,
            "similarity": j.score,
            "threshold": j.threshold,
        }
        for j in joins
    ]


def merge_with_log(
    proposals: Sequence[tuple[str, Mapping[str, Any]]],
    base: Mapping[str, Any] | None = None,
    threshold: float = MERGE_THRESHOLD,
    *,
    embedder: Embedder | None = None,
    synonym_threshold: float = SYNONYM_THRESHOLD,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """`merge_proposals`, plus every join (categories, then scenarios, in clustering order)."""
    name = embedder.name if embedder is not None else None
    sources: list[tuple[str, Mapping[str, Any]]] = [(BASE, base)] if base else []
    sources += list(proposals)
    categories: list[dict[str, Any]] = []
    scenarios: list[dict[str, Any]] = []
    for source, proposal in sources:
        for category in proposal.get("categories", []):
            if not clean(category.get("name", "")) or not clean(category.get("definition", "")):
                continue
            extra = (
                {"base_id": category.get("id"), "base_abbr": category.get("abbr")} if source == BASE else {}
            )
            categories.append({**category, **extra, "source": source})
            for scenario in category.get("scenarios", []):
                if not clean(scenario.get("name", "")) or not clean(scenario.get("definition", "")):
                    continue
                extra = (
                    {"base_id": scenario.get("id"), "base_abbr": scenario.get("abbr")}
                    if source == BASE
                    else {}
                )
                scenarios.append({**scenario, **extra, "source": source, "category": len(categories) - 1})
    category_clusters, category_joins = _cluster(
        categories, threshold, _vectors(embedder, categories), synonym_threshold
    )
    cluster_of = {m: ci for ci, members in enumerate(category_clusters) for m in members}
    draft_categories = [
        {**_merged_node(categories, members, category_joins, name), "scenarios": []}
        for members in category_clusters
    ]
    scenario_clusters, scenario_joins = _cluster(
        scenarios, threshold, _vectors(embedder, scenarios), synonym_threshold
    )
    for members in scenario_clusters:
        homes = [cluster_of[scenarios[m]["category"]] for m in members]
        counts = Counter(homes)
        home = next(h for h in homes if counts[h] == max(counts.values()))
        draft_categories[home]["scenarios"].append(_merged_node(scenarios, members, scenario_joins, name))
    draft = {"categories": draft_categories}
    assign_ids(draft)
    return draft, _log("category", categories, category_joins) + _log("scenario", scenarios, scenario_joins)

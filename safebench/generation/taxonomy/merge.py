"""Merging the judges' independent proposals (and the base taxonomy, if any) into the first draft.

Clustering is greedy in a fixed order (the base taxonomy, then judges in panel order, each in its own
order): an item joins the existing cluster it is most similar to (single linkage over `similarity`,
joined at >= the threshold; ties -> the earlier cluster) or starts a new one. A cluster's name and
definition are the most common name's (ties -> the earliest); an item from the base taxonomy always
wins, so an extension keeps it. A scenario goes to the category most of its proposers put it in
(ties -> its earliest proposer's).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from safebench.generation.taxonomy.draft import BASE, assign_ids, new_node
from safebench.generation.taxonomy.matching import MERGE_THRESHOLD, clean, similarity


def _cluster(items: Sequence[Mapping[str, Any]], threshold: float) -> list[list[int]]:
    clusters: list[list[int]] = []
    for i, item in enumerate(items):
        best, best_score = None, -1.0
        for ci, members in enumerate(clusters):
            score = max(similarity(item, items[m]) for m in members)
            if score >= threshold and score > best_score:
                best, best_score = ci, score
        if best is None:
            clusters.append([i])
        else:
            clusters[best].append(i)
    return clusters


def _representative(items: Sequence[Mapping[str, Any]], members: list[int]) -> Mapping[str, Any]:
    base = [items[m] for m in members if items[m]["source"] == BASE]
    if base:
        return base[0]
    # One vote per judge and spelling; ties go to the earliest.
    spellings = {(items[m]["source"], clean(items[m]["name"]).casefold()) for m in members}
    names = Counter(name for _, name in spellings)
    top = max(names.values())
    return next(items[m] for m in members if names[clean(items[m]["name"]).casefold()] == top)


def _merged_node(items: Sequence[Mapping[str, Any]], members: list[int]) -> dict[str, Any]:
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
) -> dict[str, Any]:
    """The draft from (judge id, Proposal dump) pairs in panel order, plus the base taxonomy if any."""
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
    category_clusters = _cluster(categories, threshold)
    cluster_of = {m: ci for ci, members in enumerate(category_clusters) for m in members}
    draft_categories = [
        {**_merged_node(categories, members), "scenarios": []} for members in category_clusters
    ]
    for members in _cluster(scenarios, threshold):
        homes = [cluster_of[scenarios[m]["category"]] for m in members]
        counts = Counter(homes)
        home = next(h for h in homes if counts[h] == max(counts.values()))
        draft_categories[home]["scenarios"].append(_merged_node(scenarios, members))
    draft = {"categories": draft_categories}
    assign_ids(draft)
    return draft

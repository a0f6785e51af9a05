"""The voted draft as a `Taxonomy`, with each item's provenance (proposers, votes, history).

Scenarios the vote did not keep are left out; categories left without a scenario are dropped. A
category's votes count the judges that approved at least one of its scenarios against those that
voted on its scenarios and approved none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from safebench.generation.taxonomy.abbrs import assign_abbrs
from safebench.generation.taxonomy.votes import kept
from safebench.schema import Category, Scenario, Taxonomy


def _provenance(
    item: Mapping[str, Any], labels: Mapping[str, str], approve: int, reject: int
) -> dict[str, Any]:
    return {
        "proposed_by": [labels.get(p, p) for p in item["proposed_by"]],
        "votes": {"approve": approve, "reject": reject},
        "changed_in_round": item["changed_in_round"],
        "history": list(item["history"]),
    }


def finalize(
    draft: Mapping[str, Any],
    tally: Mapping[str, Mapping[str, Sequence[str]]],
    labels: Mapping[str, str],
    *,
    name: str = "safebench-debate",
    version: str = "1",
) -> Taxonomy | None:
    """The voted taxonomy (None when no scenario survived the vote)."""
    empty: dict[str, list[str]] = {"approve": [], "reject": []}
    survivors = []
    for category in draft["categories"]:
        scenarios = [s for s in category["scenarios"] if kept(tally.get(s["id"], empty))]
        if not scenarios:
            continue
        history = list(category["history"])
        survivor_ids = {s["id"] for s in scenarios}
        for s in category["scenarios"]:
            if s["id"] not in survivor_ids:
                votes = tally.get(s["id"], empty)
                approve, reject = len(votes["approve"]), len(votes["reject"])
                history.append(f"vote: scenario '{s['name']}' not kept ({approve} approve, {reject} reject)")
        survivors.append(({**category, "history": history}, scenarios))
    if not survivors:
        return None
    category_abbrs = assign_abbrs([c for c, _ in survivors])
    scenario_abbrs = iter(assign_abbrs([s for _, scenarios in survivors for s in scenarios]))
    categories = []
    for (category, scenarios), abbr in zip(survivors, category_abbrs, strict=True):
        approvers = {j for s in category["scenarios"] for j in tally.get(s["id"], empty)["approve"]}
        voters = {
            j
            for s in category["scenarios"]
            for side in ("approve", "reject")
            for j in tally.get(s["id"], empty)[side]
        }
        built = []
        for s in scenarios:
            votes = tally.get(s["id"], empty)
            provenance = _provenance(s, labels, len(votes["approve"]), len(votes["reject"]))
            built.append(
                Scenario(
                    id=s["id"],
                    name=s["name"],
                    abbr=next(scenario_abbrs),
                    definition=s["definition"],
                    provenance=provenance,
                )
            )
        categories.append(
            Category(
                id=category["id"],
                name=category["name"],
                abbr=abbr,
                definition=category["definition"],
                scenarios=built,
                provenance=_provenance(category, labels, len(approvers), len(voters - approvers)),
            )
        )
    return Taxonomy(name=name, version=version, categories=categories)

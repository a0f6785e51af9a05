"""The debate's draft taxonomy: its nodes, ids, lookup by reference, and the view judges are shown.

A draft is a plain JSON-able dict the graph keeps in its state:
`{"categories": [{id, name, definition, proposed_by, base_id, base_abbr, changed_in_round, history,
"scenarios": [...same keys...]}]}`. Items keep their base-taxonomy id through renames (datasets refer
to it); other ids are slugs of the current name, made unique.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from safebench.generation.taxonomy.matching import clean, name_key, slugify

BASE = "base"  # the `proposed_by` entry of items that come from the taxonomy being extended


def new_node(name: str, definition: str, proposed_by: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "id": "",
        "name": clean(name),
        "definition": clean(definition),
        "proposed_by": list(proposed_by),
        "base_id": extra.get("base_id"),
        "base_abbr": extra.get("base_abbr"),
        "changed_in_round": extra.get("changed_in_round"),
        "history": list(extra.get("history", [])),
    }


def draft_scenarios(draft: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [s for c in draft["categories"] for s in c["scenarios"]]


def make_unique(candidate: str, taken: set[str]) -> str:
    """`candidate`, else `candidate_2`, `candidate_3`...; the result is added to `taken`."""
    value, n = candidate, 1
    while value in taken:
        n += 1
        value = f"{candidate}_{n}"
    taken.add(value)
    return value


def assign_ids(draft: dict[str, Any]) -> None:
    """Unique ids: base items keep their base id, the others get the slug of their current name."""
    for items, fallback in ((draft["categories"], "category"), (draft_scenarios(draft), "scenario")):
        taken: set[str] = set()
        pending = []
        for item in items:
            if item.get("base_id") and item["base_id"] not in taken:
                item["id"] = item["base_id"]
                taken.add(item["id"])
            else:
                pending.append(item)
        for item in pending:
            item["id"] = make_unique(slugify(item["name"], fallback), taken)


def draft_view(draft: Mapping[str, Any], *, support: bool = True) -> dict[str, Any]:
    """What judges see of the draft: ids, names, definitions and how many judges proposed each item."""

    def view(item: Mapping[str, Any]) -> dict[str, Any]:
        shown = {"id": item["id"], "name": item["name"], "definition": item["definition"]}
        if support:
            shown["support"] = sum(1 for p in item["proposed_by"] if p != BASE)
        return shown

    return {
        "categories": [
            {**view(c), "scenarios": [view(s) for s in c["scenarios"]]} for c in draft["categories"]
        ]
    }


class DraftIndex:
    """Finds draft items by id or name (exact id, then slug, then normalised name)."""

    def __init__(self, draft: Mapping[str, Any]) -> None:
        self.draft = draft

    def items(self, kind: str) -> list[dict[str, Any]]:
        return list(self.draft["categories"]) if kind == "category" else draft_scenarios(self.draft)

    def find(self, kind: str, ref: str) -> dict[str, Any] | None:
        ref = clean(ref)
        if not ref:
            return None
        items = self.items(kind)
        for test in (
            lambda it: it["id"] == ref,
            lambda it: slugify(it["name"]) == slugify(ref),
            lambda it: bool(name_key(ref)) and name_key(it["name"]) == name_key(ref),
        ):
            found = next((it for it in items if test(it)), None)
            if found is not None:
                return found
        return None

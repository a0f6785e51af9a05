"""Carrying out one accepted edit on the draft, and noting it in the items' history.

Which edits are accepted, and in what order they run, is decided in `edits`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from safebench.generation.taxonomy.draft import DraftIndex, new_node
from safebench.generation.taxonomy.matching import clean, name_key, similarity
from safebench.generation.taxonomy.replies import Edit, Named


def usable_parts(edit: Edit) -> list[Named]:
    """The edit's parts that have both a name and a definition."""
    return [p for p in edit.parts if name_key(p.name) and clean(p.definition)]


def _touch(item: dict[str, Any], round_: int, note: str) -> None:
    item["changed_in_round"] = round_
    item["history"].append(f"round {round_}: {note}")


def _by(group: Mapping[str, Any]) -> str:
    reason = group["reasons"][0]["reason"] if group["reasons"] else ""
    return f"by {', '.join(group['judges'])}" + (f": {reason}" if reason else "")


def _locate(draft: dict[str, Any], kind: str, item_id: str) -> tuple[list[dict[str, Any]], int] | None:
    """The list holding the item with this id, and its position (ids are stable within a round)."""
    lists = [draft["categories"]] if kind == "category" else [c["scenarios"] for c in draft["categories"]]
    for items in lists:
        for position, item in enumerate(items):
            if item["id"] == item_id:
                return items, position
    return None


def _parent(draft: dict[str, Any], scenario_id: str) -> dict[str, Any]:
    return next(c for c in draft["categories"] if any(s["id"] == scenario_id for s in c["scenarios"]))


def apply_edit(draft: dict[str, Any], group: dict[str, Any], round_: int) -> str | None:
    """Apply one accepted edit; returns a note when it could not take effect (its item is gone)."""
    edit: Edit = group["edit"]
    kind, by, refs = edit.kind, _by(group), group["refs"]
    where = (
        _locate(draft, "category" if edit.op == "add" else kind, refs["target"]) if refs["target"] else None
    )
    if where is None and not (edit.op == "add" and kind == "category"):
        return f"{refs['target']!r} was removed earlier in this round"
    item = where[0][where[1]] if where else {}
    if edit.op == "rename":
        old = item["name"]
        item["name"] = clean(edit.name)
        item["definition"] = clean(edit.definition) or item["definition"]
        _touch(item, round_, f"renamed from '{old}' to '{item['name']}' {by}")
    elif edit.op == "merge":
        found = _locate(draft, kind, refs["other"])
        if found is None:
            return f"{refs['other']!r} was removed earlier in this round"
        other = found[0][found[1]]
        if kind == "category":
            item["scenarios"].extend(other["scenarios"])
        elif _parent(draft, other["id"]) is not _parent(draft, item["id"]):
            _touch(
                _parent(draft, other["id"]),
                round_,
                f"scenario '{other['name']}' merged into '{item['name']}'",
            )
        del found[0][found[1]]
        item["name"] = clean(edit.name) or item["name"]
        item["definition"] = clean(edit.definition) or item["definition"]
        item["proposed_by"] += [p for p in other["proposed_by"] if p not in item["proposed_by"]]
        _touch(item, round_, f"merged with '{other['name']}' {by}")
    elif edit.op == "split":
        proposers = item["proposed_by"] + [j for j in group["judges"] if j not in item["proposed_by"]]
        new = [new_node(p.name, p.definition, proposers, history=item["history"]) for p in usable_parts(edit)]
        for node in new:
            _touch(node, round_, f"split from '{item['name']}' {by}")
        if kind == "category":
            # Each scenario of the split category goes to the part it is most similar to.
            for node in new:
                node["scenarios"] = []
            for scenario in item["scenarios"]:
                scores = [similarity(scenario, node) for node in new]
                new[scores.index(max(scores))]["scenarios"].append(scenario)
        else:
            _touch(_parent(draft, item["id"]), round_, f"scenario '{item['name']}' split")
        assert where is not None
        where[0][where[1] : where[1] + 1] = new
    elif edit.op == "add":
        node = new_node(edit.name, edit.definition, group["judges"])
        _touch(node, round_, f"added {by}")
        if kind == "category":
            index = DraftIndex(draft)
            parts = [p for p in usable_parts(edit) if index.find("scenario", p.name) is None]
            node["scenarios"] = [new_node(p.name, p.definition, group["judges"]) for p in parts]
            for scenario in node["scenarios"]:
                _touch(scenario, round_, f"added with category '{node['name']}' {by}")
            draft["categories"].append(node)
        else:
            item["scenarios"].append(node)
            _touch(item, round_, f"scenario '{node['name']}' added")
    else:  # drop
        if kind == "scenario":
            _touch(_parent(draft, item["id"]), round_, f"scenario '{item['name']}' dropped {by}")
        assert where is not None
        del where[0][where[1]]
    return None

"""A rebuttal round's edits: resolving their targets, settling conflicts by support, applying them.

Identical requests from several judges are one edit with several supporters. Two different edits
*conflict* when they touch the same item, or would create the same name (e.g. drop X vs rename X;
rename X to A vs rename X to B; merge X+Y vs split X). An edit is applied when its supporters
outnumber the supporters of every edit it conflicts with; so one judge's edit is applied when no other
judge asks for a conflicting one, and a tie applies neither. Edits whose targets cannot be found, or
that change nothing, are rejected and logged. Applied edits run in the order rename, merge, split,
add, drop.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from safebench.generation.taxonomy.draft import DraftIndex, assign_ids
from safebench.generation.taxonomy.edit_ops import apply_edit, usable_parts
from safebench.generation.taxonomy.matching import clean, name_key
from safebench.generation.taxonomy.replies import Edit

_OP_ORDER = {"rename": 0, "merge": 1, "split": 2, "add": 3, "drop": 4}
_REASON_CHARS = 160


def _check(
    edit: Edit, index: DraftIndex
) -> tuple[str | None, tuple[Any, ...], frozenset[Any], dict[str, str]]:
    """(problem, signature, touched keys, resolved ids) of one edit against the draft."""
    kind, new = edit.kind, name_key(edit.name)
    nothing: tuple[Any, ...] = ()
    if edit.op == "add":
        home = index.find("category", edit.target) if kind == "scenario" else None
        if kind == "scenario" and home is None:
            return f"unknown category {edit.target!r}", nothing, frozenset(), {}
        if not new or not clean(edit.definition):
            return "an added item needs a name and a definition", nothing, frozenset(), {}
        if index.find(kind, edit.name) is not None:
            return f"{kind} {clean(edit.name)!r} is already in the draft", nothing, frozenset(), {}
        touched = {("new", kind, new)} | {("new", "scenario", name_key(p.name)) for p in edit.parts}
        return None, ("add", kind, new), frozenset(touched), {"target": home["id"] if home else ""}
    target = index.find(kind, edit.target)
    if target is None:
        return f"unknown {kind} {edit.target!r}", nothing, frozenset(), {}
    tid = target["id"]
    refs = {"target": tid}
    if edit.op == "drop":
        return None, ("drop", kind, tid), frozenset({("item", kind, tid)}), refs
    if edit.op == "rename":
        if not new:
            return "a rename needs a new name", nothing, frozenset(), {}
        same_definition = clean(edit.definition) in ("", target["definition"])
        if clean(edit.name) == target["name"] and same_definition:
            return "the new name is the current name", nothing, frozenset(), {}
        return None, ("rename", kind, tid, new), frozenset({("item", kind, tid), ("new", kind, new)}), refs
    if edit.op == "merge":
        other = index.find(kind, edit.other)
        if other is None:
            return f"unknown {kind} {edit.other!r}", nothing, frozenset(), {}
        if other["id"] == tid:
            return f"cannot merge {kind} {tid!r} with itself", nothing, frozenset(), {}
        touched = {("item", kind, tid), ("item", kind, other["id"])} | (
            {("new", kind, new)} if new else set()
        )
        signature = ("merge", kind, frozenset({tid, other["id"]}))
        return None, signature, frozenset(touched), {**refs, "other": other["id"]}
    keys = tuple(sorted(name_key(p.name) for p in usable_parts(edit)))
    if len(keys) < 2:
        return "a split needs at least two parts with a name and a definition", nothing, frozenset(), {}
    touched = {("item", kind, tid)} | {("new", kind, k) for k in keys}
    return None, ("split", kind, tid, keys), frozenset(touched), refs


def _reason(text: str) -> str:
    text = clean(text)
    return text if len(text) <= _REASON_CHARS else text[: _REASON_CHARS - 1].rstrip() + "…"


def _describe(edit: Edit) -> dict[str, Any]:
    described: dict[str, Any] = {"op": edit.op, "kind": edit.kind, "target": clean(edit.target)}
    for key in ("other", "name", "definition"):
        if clean(getattr(edit, key)):
            described[key] = clean(getattr(edit, key))
    if edit.parts:
        described["parts"] = [clean(p.name) for p in edit.parts]
    return described


def apply_edits(
    draft: Mapping[str, Any], critiques: Sequence[tuple[str, Sequence[Mapping[str, Any]]]], round_: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The revised draft and the round's log, from (judge id, edits) pairs in panel order."""
    revised = copy.deepcopy(dict(draft))
    index = DraftIndex(revised)
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    rejected: list[dict[str, Any]] = []
    for judge, edits in critiques:
        for raw in edits:
            edit = raw if isinstance(raw, Edit) else Edit.model_validate(raw)
            problem, signature, touched, refs = _check(edit, index)
            if problem:
                rejected.append({**_describe(edit), "judges": [judge], "why": problem})
                continue
            group = groups.setdefault(
                signature, {"edit": edit, "refs": refs, "judges": [], "reasons": [], "touched": touched}
            )
            if judge not in group["judges"]:
                group["judges"].append(judge)
                if clean(edit.reason):
                    group["reasons"].append({"judge": judge, "reason": _reason(edit.reason)})
    accepted = []
    for group in groups.values():
        rivals = [g for g in groups.values() if g is not group and g["touched"] & group["touched"]]
        if len(group["judges"]) > max((len(g["judges"]) for g in rivals), default=0):
            accepted.append(group)
        else:
            against = ", ".join(sorted({j for g in rivals for j in g["judges"]}))
            why = f"conflicts with an edit that has as much or more support (asked by {against})"
            rejected.append({**_describe(group["edit"]), "judges": group["judges"], "why": why})
    applied = []
    for group in sorted(accepted, key=lambda g: _OP_ORDER[g["edit"].op]):
        note = apply_edit(revised, group, round_)
        entry = {**_describe(group["edit"]), "judges": group["judges"], "reasons": group["reasons"]}
        applied.append({**entry, "note": note} if note else entry)
    assign_ids(revised)
    return revised, {"round": round_, "applied": applied, "rejected": rejected}

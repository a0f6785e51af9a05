"""The taxonomy debate's moderator, as deterministic code: merge proposals, apply edits, count votes.

Judges' replies (`Proposal`, `Critique`, `Ballot`) are turned into a *draft*: a plain JSON-able dict
`{"categories": [{id, name, definition, proposed_by, base_id, base_abbr, changed_in_round, history,
"scenarios": [...same keys...]}]}` that the graph keeps in its state, and finally into a `Taxonomy`.

Matching names (merge, and resolving the targets of edits and votes):
- `tokens`: ASCII-folded, lower-cased words; "&" read as "and"; stop words dropped; a crude plural
  stem ("activities" -> "activity", "opinions" -> "opinion"); a small synonym table (`_SYNONYMS`,
  e.g. guidance/counsel -> advice, behaviour -> behavior, views -> opinion) maps near-synonyms to one
  word. `name_similarity` is 1 when the names' words, concatenated, are equal ("Cyber Security" vs
  "Cybersecurity"), else the Jaccard similarity of their word sets.
- `similarity` = 0.6 x name similarity + 0.4 x Jaccard similarity of the definitions' words.
  Two proposed categories (or two scenarios) are joined when it is >= `MERGE_THRESHOLD` (0.5): equal
  normalised names always join; names sharing one word of three need nearly the same definition.
  It is conservative on purpose: a missed duplicate can still be merged by a judge's `merge` edit in
  the rebuttal rounds, while a wrong join would silently lose a scenario.
- Clustering is greedy in a fixed order (the base taxonomy, then judges in panel order, each in its
  own order): an item joins the existing cluster it is most similar to (single linkage; ties -> the
  earlier cluster) or starts a new one. A cluster's name and definition are the most common name's
  (ties -> the earliest); an item from the base taxonomy always wins, so an extension keeps it.
  A scenario goes to the category most of its proposers put it in (ties -> its earliest proposer's).

Edits (`apply_edits`), one rebuttal round at a time: identical requests from several judges are one
edit with several supporters. Two different edits *conflict* when they touch the same item, or would
create the same name (e.g. drop X vs rename X; rename X to A vs rename X to B; merge X+Y vs split X).
An edit is applied when its supporters outnumber the supporters of every edit it conflicts with; so
one judge's edit is applied when no other judge asks for a conflicting one, and a tie applies
neither. Edits whose targets cannot be found, or that change nothing, are rejected and logged.
Applied edits run in the order rename, merge, split, add, drop. Items keep their base-taxonomy id
through renames (datasets refer to it); other ids are slugs of the current name, made unique.

Votes (`finalize`): a scenario is kept when more than half of the valid votes cast on it approve
(a judge whose ballot failed, or who skipped that scenario, casts none); categories left without a
scenario are dropped. A category's votes count the judges that approved at least one of its
scenarios against those that voted on its scenarios and approved none.
"""

from __future__ import annotations

import copy
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from safebench.schema import Category, Scenario, Taxonomy

MERGE_THRESHOLD = 0.5
NAME_WEIGHT = 0.6
BASE = "base"  # the `proposed_by` entry of items that come from the taxonomy being extended
_REASON_CHARS = 160

# ---------------------------------------------------------------------------------------------- replies


class Named(BaseModel):
    name: str = Field(min_length=1, description="short name, 1-4 words")
    definition: str = Field(min_length=1, description="one sentence")


class ProposedCategory(Named):
    scenarios: list[Named] = Field(min_length=1)


class Proposal(BaseModel):
    """A judge's independent proposal: categories, each with its scenarios."""

    categories: list[ProposedCategory] = Field(min_length=1)


Op = Literal["add", "drop", "merge", "split", "rename"]
Kind = Literal["category", "scenario"]


class Edit(BaseModel):
    """One requested change to the draft. Which fields matter depends on `op` (see critique.j2)."""

    op: Op
    kind: Kind = "scenario"
    target: str = Field(
        default="", description="id or name of the item acted on (add scenario: its category)"
    )
    other: str = Field(default="", description="merge: the item merged into target")
    name: str = Field(default="", description="add/rename/merge: the (new) name")
    definition: str = ""
    parts: list[Named] = Field(
        default_factory=list, description="split: the new items; add category: its scenarios"
    )
    reason: str = ""

    @field_validator("op", "kind", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value


class Critique(BaseModel):
    """A judge's critique of the draft; an empty list means no objection."""

    edits: list[Edit]


class Vote(BaseModel):
    scenario: str = Field(description="scenario id")
    approve: bool
    reason: str = ""


class Ballot(BaseModel):
    votes: list[Vote]


# ---------------------------------------------------------------------------------------------- names

_STOPWORDS = frozenset(
    word
    for line in (
        "a an and or of the to for in on with by from as at into about its their any other such that which",
        "who this these those be is are was were been it them they someone something can could should may",
        "e g eg etc including especially without not no own more how what when where via",
    )
    for word in line.split()
)
# Keys are stems (see _stem). Only true near-synonyms: a wrong entry would join distinct scenarios.
_SYNONYMS = {
    stem: word
    for word, stems in {
        "advice": "guidance counsel counseling counselling consultation recommendation",
        "behavior": "behaviour conduct",
        "opinion": "view viewpoint stance",
        "speech": "language",
        "harm": "injury",
        "criminal": "crime",
        "illegal": "unlawful illicit",
        "privacy": "private",
        "confidentiality": "confidential secrecy",
        "fraudulent": "fraud scam",
        "child": "children minor",
        "pornographic": "pornography porn",
        "hate": "hateful",
        "defamatory": "defamation",
        "disinformation": "misinformation",
        "religious": "religion",
        "political": "politic",
        "medical": "health medicine",
        "investment": "financial finance",
        "legal": "law",
    }.items()
    for stem in stems.split()
}
_PHRASES = {"intellectual property": "ip", "malicious software": "malware"}


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def clean(text: str) -> str:
    """Whitespace collapsed and trimmed: how names and definitions are stored."""
    return " ".join(str(text).split())


def _stem(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def tokens(text: str) -> list[str]:
    text = _ascii(text).lower().replace("&", " and ")
    for phrase, word in _PHRASES.items():
        text = re.sub(rf"\b{phrase}\b", word, text)
    out = []
    for word in re.findall(r"[a-z0-9]+", text):
        if word not in _STOPWORDS:
            stem = _stem(word)
            out.append(_SYNONYMS.get(stem, stem))
    return out


def name_key(name: str) -> str:
    """Names equal under this key are the same name ("Medical Guidance" = "medical advice")."""
    return "".join(tokens(name))


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def name_similarity(a: str, b: str) -> float:
    ta, tb = tokens(a), tokens(b)
    if not ta or not tb:
        return 0.0
    return 1.0 if "".join(ta) == "".join(tb) else _jaccard(set(ta), set(tb))


def similarity(a: Mapping[str, Any], b: Mapping[str, Any]) -> float:
    """Of two items with `name` and `definition` (see the module docstring)."""
    names = name_similarity(a["name"], b["name"])
    definitions = _jaccard(set(tokens(a["definition"])), set(tokens(b["definition"])))
    return NAME_WEIGHT * names + (1 - NAME_WEIGHT) * definitions


def slugify(name: str, fallback: str = "item") -> str:
    words = [w for w in re.findall(r"[a-z0-9]+", _ascii(name).lower().replace("&", " and ")) if w != "and"]
    return "_".join(words)[:60].strip("_") or fallback


def _unique(candidate: str, taken: set[str]) -> str:
    value, n = candidate, 1
    while value in taken:
        n += 1
        value = f"{candidate}_{n}"
    taken.add(value)
    return value


# ---------------------------------------------------------------------------------------------- draft


def _node(name: str, definition: str, proposed_by: list[str], **extra: Any) -> dict[str, Any]:
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
            item["id"] = _unique(slugify(item["name"], fallback), taken)


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
    return _node(
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


# ---------------------------------------------------------------------------------------------- edits

_OP_ORDER = {"rename": 0, "merge": 1, "split": 2, "add": 3, "drop": 4}


class _Index:
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


def _check(edit: Edit, index: _Index) -> tuple[str | None, tuple[Any, ...], frozenset[Any], dict[str, str]]:
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
    keys = tuple(sorted(name_key(p.name) for p in _parts(edit)))
    if len(keys) < 2:
        return "a split needs at least two parts with a name and a definition", nothing, frozenset(), {}
    touched = {("item", kind, tid)} | {("new", kind, k) for k in keys}
    return None, ("split", kind, tid, keys), frozenset(touched), refs


def _parts(edit: Edit) -> list[Named]:
    return [p for p in edit.parts if name_key(p.name) and clean(p.definition)]


def _reason(text: str) -> str:
    text = clean(text)
    return text if len(text) <= _REASON_CHARS else text[: _REASON_CHARS - 1].rstrip() + "…"


def _touch(item: dict[str, Any], round_: int, note: str) -> None:
    item["changed_in_round"] = round_
    item["history"].append(f"round {round_}: {note}")


def _by(group: Mapping[str, Any]) -> str:
    reason = group["reasons"][0]["reason"] if group["reasons"] else ""
    return f"by {', '.join(group['judges'])}" + (f": {reason}" if reason else "")


def _describe(edit: Edit) -> dict[str, Any]:
    described: dict[str, Any] = {"op": edit.op, "kind": edit.kind, "target": clean(edit.target)}
    for key in ("other", "name", "definition"):
        if clean(getattr(edit, key)):
            described[key] = clean(getattr(edit, key))
    if edit.parts:
        described["parts"] = [clean(p.name) for p in edit.parts]
    return described


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


def _apply(draft: dict[str, Any], group: dict[str, Any], round_: int) -> str | None:
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
        new = [_node(p.name, p.definition, proposers, history=item["history"]) for p in _parts(edit)]
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
        node = _node(edit.name, edit.definition, group["judges"])
        _touch(node, round_, f"added {by}")
        if kind == "category":
            index = _Index(draft)
            parts = [p for p in _parts(edit) if index.find("scenario", p.name) is None]
            node["scenarios"] = [_node(p.name, p.definition, group["judges"]) for p in parts]
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


def apply_edits(
    draft: Mapping[str, Any], critiques: Sequence[tuple[str, Sequence[Mapping[str, Any]]]], round_: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The revised draft and the round's log, from (judge id, edits) pairs in panel order."""
    revised = copy.deepcopy(dict(draft))
    index = _Index(revised)
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
        note = _apply(revised, group, round_)
        entry = {**_describe(group["edit"]), "judges": group["judges"], "reasons": group["reasons"]}
        applied.append({**entry, "note": note} if note else entry)
    assign_ids(revised)
    return revised, {"round": round_, "applied": applied, "rejected": rejected}


# ---------------------------------------------------------------------------------------------- votes


def tally_votes(
    draft: Mapping[str, Any], ballots: Sequence[tuple[str, Sequence[Mapping[str, Any]]]]
) -> dict[str, dict[str, list[str]]]:
    """Scenario id -> judges that approved / rejected it; unknown ids and repeated votes are ignored."""
    index = _Index(draft)
    tally = {s["id"]: {"approve": [], "reject": []} for s in draft_scenarios(draft)}
    for judge, votes in ballots:
        seen: set[str] = set()
        for vote in votes:
            scenario = index.find("scenario", str(vote.get("scenario", "")))
            if scenario is None or scenario["id"] in seen:
                continue
            seen.add(scenario["id"])
            tally[scenario["id"]]["approve" if vote.get("approve") else "reject"].append(judge)
    return tally


def kept(votes: Mapping[str, Sequence[str]]) -> bool:
    """A strict majority of the valid votes cast approves."""
    approve, reject = len(votes["approve"]), len(votes["reject"])
    return approve * 2 > approve + reject


# ---------------------------------------------------------------------------------------------- output


def _abbr_candidates(name: str) -> list[str]:
    words = re.findall(r"[A-Za-z0-9]+", _ascii(name))
    content = [w for w in words if w.lower() not in _STOPWORDS] or words or ["X"]
    first, letters = content[0], "".join(content).upper()
    candidates = []
    if first.isupper() and len(first) >= 2:  # an acronym ("IP Infringement" -> IP)
        candidates.append(first[:2])
    if len(content) >= 2:
        candidates.append(content[0][0] + content[1][0])
    candidates.append(first[:2])
    candidates += [letters[0] + c for c in letters[1:]]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    candidates += [letters[0] + c for c in alphabet]
    candidates += [a + b for a in alphabet for b in alphabet]
    return [c.upper() for c in candidates if len(c) == 2]


def derive_abbr(name: str, taken: set[str]) -> str:
    """A 2-letter abbreviation not in `taken` (initials, else the first letter and a later one)."""
    for candidate in _abbr_candidates(name):
        if candidate not in taken:
            taken.add(candidate)
            return candidate
    return _unique(_abbr_candidates(name)[0], taken)  # more than 676 items: add a number


def assign_abbrs(items: Sequence[Mapping[str, Any]]) -> list[str]:
    """Unique abbreviations in the items' order: base abbreviations first, then derived ones."""
    taken: set[str] = set()
    out: list[str | None] = []
    for item in items:
        base = item.get("base_abbr")
        if base and base not in taken:
            taken.add(base)
            out.append(base)
        else:
            out.append(None)
    return [abbr or derive_abbr(item["name"], taken) for abbr, item in zip(out, items, strict=True)]


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

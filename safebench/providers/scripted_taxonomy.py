"""Scripted stand-ins of the taxonomy debate's judges (registered into safebench.providers.scripted).

They are NOT language models: they rearrange the bundled default taxonomy by fixed rules and write
nothing else. They read the task from the prompt ("TASK: propose / critique / vote", see
prompts/taxonomy/), their judge number N from the system prompt ("judge N of K"), and reply with the
JSON the prompts ask for; every reply carries a `note` saying it comes from a stand-in.

- `taxonomist`:
  - propose: the default taxonomy, varied by N mod 3: 1 → as is; 2 → near-synonym names ("Medical
    Guidance", "Illegal and Criminal Behaviour"); 0 → omits "Hardware Security" and adds
    "Disinformation" to "Inappropriate Speech".
  - critique, round 1: every judge asks to restore (add) its own scenarios missing from the draft;
    judge 2 (mod 3) also asks to drop the draft's scenarios it did not propose. No objection from
    round 2 on.
  - vote: approves every scenario except those it did not propose.
  With three judges: round 1 drops "Disinformation", round 2 has no objection, the vote keeps
  "Hardware Security" 2 to 1: the default 8 categories and 23 scenarios.
- `taxonomist-stubborn`: like `taxonomist`, but in every round asks to rename "Bias" to "Bias and
  Stereotyping" or back again, so the debate always runs to its round cap.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from safebench.generation.taxonomy import MERGE_THRESHOLD, similarity
from safebench.json_extract import last_json
from safebench.providers.scripted import LABEL, register_behaviour
from safebench.taxonomy import default_taxonomy

_SYNONYM_NAMES = {
    "medical_advice": "Medical Guidance",
    "illegal_criminal_behavior": "Illegal and Criminal Behaviour",
}
_OMITTED = "hardware_security"
_EXTRA_HOME = "inappropriate_speech"
_EXTRA = {
    "name": "Disinformation",
    "definition": "False or misleading claims presented as fact to deceive the public.",
}


def _judge_number(system: str) -> int:
    match = re.search(r"judge (\d+) of \d+", system)
    return int(match.group(1)) if match else 1


def _tagged_json(prompt: str, tag: str) -> Any:
    match = re.search(rf"<{tag}>\s*(.*?)\s*</{tag}>", prompt, re.S)
    return last_json(match.group(1), arrays=True) if match else None


def proposal(number: int) -> dict[str, Any]:
    """Judge `number`'s proposal (see the module docstring)."""
    variant = number % 3
    categories = []
    for category in default_taxonomy().categories:
        scenarios = []
        for s in category.scenarios:
            if variant == 0 and s.id == _OMITTED:
                continue
            name = _SYNONYM_NAMES.get(s.id, s.name) if variant == 2 else s.name
            scenarios.append({"name": name, "definition": s.definition})
        if variant == 0 and category.id == _EXTRA_HOME:
            scenarios.append(dict(_EXTRA))
        name = _SYNONYM_NAMES.get(category.id, category.name) if variant == 2 else category.name
        categories.append({"name": name, "definition": category.definition, "scenarios": scenarios})
    return {"note": LABEL, "categories": categories}


def _own(number: int, item: Mapping[str, Any]) -> bool:
    """Whether judge `number` proposed something like this scenario itself."""
    own = [s for c in proposal(number)["categories"] for s in c["scenarios"]]
    return any(similarity(item, s) >= MERGE_THRESHOLD for s in own)


def _critique(number: int, round_: int, draft: Mapping[str, Any]) -> list[dict[str, Any]]:
    if round_ != 1:
        return []
    edits = []
    shown = [s for c in draft["categories"] for s in c["scenarios"]]
    for category in proposal(number)["categories"]:
        home = next((c for c in draft["categories"] if similarity(c, category) >= MERGE_THRESHOLD), None)
        for s in category["scenarios"]:
            if home is not None and not any(similarity(s, d) >= MERGE_THRESHOLD for d in shown):
                reason = f"{LABEL} Restores a scenario the draft omitted."
                edits.append({"op": "add", "kind": "scenario", "target": home["id"], **s, "reason": reason})
    if number % 3 == 2:
        reason = f"{LABEL} Already covered by another scenario."
        edits += [
            {"op": "drop", "kind": "scenario", "target": s["id"], "reason": reason}
            for s in shown
            if not _own(number, s)
        ]
    return edits


def _stubborn_critique(draft: Mapping[str, Any]) -> list[dict[str, Any]]:
    names = {"Bias": "Bias and Stereotyping", "Bias and Stereotyping": "Bias"}
    for s in (s for c in draft["categories"] for s in c["scenarios"]):
        if s["name"] in names:
            reason = f"{LABEL} A better name (this stand-in changes its mind every round)."
            return [
                {
                    "op": "rename",
                    "kind": "scenario",
                    "target": s["id"],
                    "name": names[s["name"]],
                    "reason": reason,
                }
            ]
    return []


def _reply(prompt: str, system: str, *, stubborn: bool = False) -> str:
    number = _judge_number(system)
    task = re.search(r"TASK: (propose|critique|vote)", prompt)
    if task is None:
        return f"{LABEL} This stand-in only knows the taxonomy debate's tasks."
    if task.group(1) == "propose":
        return json.dumps(proposal(number))
    if task.group(1) == "critique":
        draft = _tagged_json(prompt, "draft") or {"categories": []}
        round_match = re.search(r"round (\d+) of at most", prompt)
        round_ = int(round_match.group(1)) if round_match else 1
        edits = _stubborn_critique(draft) if stubborn else _critique(number, round_, draft)
        return json.dumps({"note": LABEL, "edits": edits})
    votes = [
        {
            "scenario": s["id"],
            "approve": _own(number, s),
            "reason": f"{LABEL} Compared with its own proposal.",
        }
        for s in _tagged_json(prompt, "ballot") or []
    ]
    return json.dumps({"note": LABEL, "votes": votes})


register_behaviour("taxonomist", _reply)
register_behaviour("taxonomist-stubborn", lambda prompt, system: _reply(prompt, system, stubborn=True))

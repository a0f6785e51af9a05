"""Scripted stand-in of the persuasion transform (registered into safebench.providers.scripted).

- `persuader`: a deterministic placeholder rewrite: the marker "[scripted stand-in]", the technique's
  name, "[persuasive framing withheld]" and the original query, as JSON `{"text": ...}`. It writes no
  persuasion of its own: it lets the transform, its graph and an evaluation of its output run offline.

It is not a language model.
"""

from __future__ import annotations

import json
import re

from safebench.fence import unfence
from safebench.providers.scripted import LABEL, register_behaviour

__all__ = ["placeholder_rewrite"]

_TECHNIQUE = re.compile(r"^Technique: (?P<name>.+?) — ", re.M)


def placeholder_rewrite(query: str, technique: str) -> str:
    """What `scripted:persuader` writes for `query` with the technique named `technique`."""
    return f"{LABEL} ({technique}) [persuasive framing withheld] {' '.join(query.split())}"


def _persuade(prompt: str, system: str) -> str:
    match = _TECHNIQUE.search(prompt)
    technique = match.group("name") if match else "unknown technique"
    query = unfence(prompt, "query") or ""
    return json.dumps({"text": placeholder_rewrite(query, technique)})


register_behaviour("persuader", _persuade)

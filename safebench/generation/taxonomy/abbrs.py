"""Two-letter abbreviations of the final categories and scenarios (base abbreviations are kept)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from safebench.generation.taxonomy.draft import make_unique
from safebench.generation.taxonomy.matching import STOPWORDS, ascii_fold


def _abbr_candidates(name: str) -> list[str]:
    words = re.findall(r"[A-Za-z0-9]+", ascii_fold(name))
    content = [w for w in words if w.lower() not in STOPWORDS] or words or ["X"]
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
    return make_unique(_abbr_candidates(name)[0], taken)  # more than 676 items: add a number


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

"""Runs that differ only in what the targets were shown: the image condition, the query template, the
dataset's transform or the voice. The page then labels each run's targets by what differs ("image:
black") so that the leaderboard and the category tables put the conditions side by side.

Read from the run's files only (config.yaml, run.json, the dataset's items.jsonl). Every string here is
untrusted and is escaped by the page's template, never here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safebench.html_report.loading import RunData

DIMENSIONS = ("image", "template", "transform", "voice")
# config.yaml keys that are not part of what a run measured, or are the dimensions themselves.
_NOT_COMPARED = {
    "out",
    "concurrency",
    "retry",
    "calibration",
    "resolved",
    "dataset",
    "image_condition",
    "voice",
}
NOT_APPLICABLE = "–"


@dataclass(frozen=True)
class Comparison:
    """The runs' values of every dimension, which of them differ, and each run's label."""

    differing: list[str]
    values: list[dict[str, str]]  # per run, per dimension
    labels: list[str]  # per run: "image: black · template: poc_wrapper"
    names: list[str]  # the runs' names, for the table


def _template_name(ref: str) -> str:
    """A bundled name as is, a file by its name (the full path is in the run's overview)."""
    return Path(ref).name if ("/" in ref or "\\" in ref) else ref


def _templates(run: RunData) -> str:
    shas = (run.run_info.get("conditions") or {}).get("target_templates") or {}
    parts = []
    for target in run.config.get("targets") or []:
        if not isinstance(target, dict):
            continue
        ref = target.get("prompt_template")
        label = str(target.get("label") or target.get("spec"))
        if ref:
            sha = (shas.get(label) or {}).get("sha256")
            # The hash tells two versions of one file apart (the run's identity hashes the text too).
            parts.append(_template_name(str(ref)) + (f" ({str(sha)[:8]})" if sha else ""))
        else:
            parts.append("none")
    unique = list(dict.fromkeys(parts))
    return ", ".join(unique) if unique else "none"


def _items(run: RunData) -> list[dict[str, Any]] | None:
    if run.dataset_root is None:
        return None
    path = run.dataset_root / "items.jsonl"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]
    except (OSError, ValueError):
        return None


def _transform(items: list[dict[str, Any]] | None) -> str:
    if items is None:
        return "unknown"
    names = {str((i.get("metadata") or {}).get("transform") or "none") for i in items}
    return ", ".join(sorted(names))


def _base_dataset(run: RunData, items: list[dict[str, Any]] | None) -> str:
    """The dataset before any transform: item ids and their original queries (a transform keeps the ids
    and saves the query it replaced in metadata.original_text)."""
    if items is None:
        return run.dataset_sha256 or "unknown"
    base = [(i.get("id"), (i.get("metadata") or {}).get("original_text") or i.get("text")) for i in items]
    return hashlib.sha256(json.dumps(base, ensure_ascii=False).encode()).hexdigest()


def _rest(run: RunData, items: list[dict[str, Any]] | None) -> str:
    """Everything else that makes the run what it is, as one comparable string."""
    config = {k: v for k, v in run.config.items() if k not in _NOT_COMPARED}
    config["targets"] = [
        {k: v for k, v in t.items() if k != "prompt_template"} if isinstance(t, dict) else t
        for t in config.get("targets") or []
    ]
    config["base_dataset"] = _base_dataset(run, items)
    return json.dumps(config, sort_keys=True, default=str)


def dimensions(run: RunData, items: list[dict[str, Any]] | None = None) -> dict[str, str]:
    config = run.config
    modality = str(config.get("modality") or "image")
    return {
        "image": str(config.get("image_condition") or "dataset") if modality == "image" else NOT_APPLICABLE,
        "template": _templates(run),
        "transform": _transform(items),
        "voice": str(config.get("voice") or "female") if modality.startswith("audio") else NOT_APPLICABLE,
    }


def compare_conditions(runs: list[RunData]) -> Comparison | None:
    """The comparison when two or more runs differ only in the DIMENSIONS, else None (the page then
    tells runs apart by name, as before)."""
    if len(runs) < 2 or any(not run.config for run in runs):
        return None
    items = [_items(run) for run in runs]
    if len({_rest(run, i) for run, i in zip(runs, items, strict=True)}) != 1:
        return None
    values = [dimensions(run, i) for run, i in zip(runs, items, strict=True)]
    differing = [d for d in DIMENSIONS if len({v[d] for v in values}) > 1]
    if not differing:
        return None
    labels = [" · ".join(f"{d}: {v[d]}" for d in differing) for v in values]
    if len(set(labels)) != len(labels):  # e.g. two runs of the same condition next to a third
        return None
    return Comparison(differing, values, labels, [run.name for run in runs])

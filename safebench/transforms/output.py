"""Writing a dataset derived from another one (a transform or a subset): the --out rule, media copies,
per-item provenance, the card's "how it was made" section, and validation of what was written.

A derived folder is self-contained: every image and recording it refers to is copied into it (copies,
not links, so it can be moved, zipped or uploaded on its own).
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from safebench.dataset import Dataset, DatasetInvalid, validate_dataset, write_dataset
from safebench.dataset.card import dataset_card, md
from safebench.dataset.validate import ITEMS_FILE
from safebench.run_info import dataset_identity
from safebench.schema import Item

__all__ = [
    "TransformError",
    "check_out",
    "copy_media",
    "derived_card",
    "file_stem",
    "source_identity",
    "tag_item",
    "write_derived",
]


class TransformError(ValueError):
    """Bad input to a transform or subset (the message is one line naming what to change)."""


def check_out(out: Path, source: Path) -> None:
    """`--out` must be a new or empty folder outside the source dataset: nothing is ever overwritten
    (a derived dataset is cheap to make again in a new folder; a user's folder is not). Checks first
    that the source is a folder at all (validation would say so less plainly)."""
    if not source.is_dir():
        raise TransformError(f"dataset folder not found: {source}")
    if out.exists() and not out.is_dir():
        raise TransformError(f"--out {out} is a file, not a folder; choose a new folder")
    if out.is_dir() and any(out.iterdir()):
        raise TransformError(f"--out {out} is not empty; choose a new folder (nothing is overwritten)")
    resolved, base = out.resolve(), source.resolve()
    if resolved == base or resolved.is_relative_to(base):
        raise TransformError(f"--out {out} is inside the source dataset {source}; choose another folder")
    # As for runs (`safebench evaluate`): a dataset nested in another one would be listed as its files.
    holder = next((p for p in resolved.parents if (p / ITEMS_FILE).is_file()), None)
    if holder is not None:
        raise TransformError(f"--out {out} is inside the dataset folder {holder}; choose another folder")


def _copy(source_root: Path, out: Path, rel: str) -> None:
    dest = out / rel
    if dest.exists():  # two items sharing one file
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source_root / rel, dest)


def copy_media(source_root: Path, out: Path, item: Item, *, image: bool = True, audio: bool = True) -> Item:
    """Copy the item's image and recordings to the same relative paths under `out`. What is not kept
    (`image=False`, `audio=False`) is dropped from the returned item, so it never names a missing file."""
    update: dict[str, Any] = {}
    if item.image and image:
        _copy(source_root, out, item.image)
    elif item.image:
        update.update(image=None, image_sha256=None)
    if item.audio and audio:
        for ref in item.audio:
            _copy(source_root, out, ref.path)
    elif item.audio:
        update["audio"] = []
    return item.model_copy(update=update) if update else item


_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def file_stem(item_id: str, taken: set[str]) -> str:
    """A file name for an item's new media; unique ignoring case (case-insensitive file systems)."""
    stem = _UNSAFE_CHARS.sub("_", item_id).strip("._")[:100] or "item"
    candidate, n = stem, 2
    while candidate.lower() in taken:
        candidate, n = f"{stem}_{n}", n + 1
    taken.add(candidate.lower())
    return candidate


def tag_item(item: Item, attack: str, details: Mapping[str, Any], **update: Any) -> Item:
    """`item` with `update` applied and its metadata saying which transform made it.

    `metadata.transform` is the last transform's name (easy to filter on), `metadata.transforms` the
    chain with each step's parameters (a transform of a transformed dataset appends), and
    `metadata.original_text` the query as it was before the first transform."""
    metadata = dict(item.metadata)
    metadata.setdefault("original_text", item.text)
    metadata["transform"] = attack
    metadata["transforms"] = [*metadata.get("transforms", []), {"attack": attack, **details}]
    return item.model_copy(update={**update, "metadata": metadata})


def source_identity(dataset: Dataset) -> dict[str, Any]:
    """Path, item count and content hash of the source (the hash `run.json` records for a run)."""
    identity = dataset_identity(dataset)
    return {"path": identity["path"], "items": identity["items"], "sha256": identity["sha256"]}


def derived_card(
    title: str,
    summary: str,
    dataset: Dataset,
    items: Sequence[Item],
    out: Path,
    how: Mapping[str, Any],
    extra: str = "",
) -> str:
    """The dataset card plus a "How this dataset was made" section: `how` as a list and as JSON (the
    exact parameters, for a script), then `extra` (free Markdown)."""
    card = dataset_card(title, summary, dataset.taxonomy, items, load_path=str(out))
    lines = ["## How this dataset was made\n"]
    for key, value in how.items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
        lines.append(f"- {md(key)}: `{shown}`")
    lines.append("\n```json\n" + json.dumps(how, indent=2, ensure_ascii=False, sort_keys=True) + "\n```\n")
    if extra:
        lines.append(extra.strip() + "\n")
    return card.rstrip("\n") + "\n\n" + "\n".join(lines)


def write_derived(out: Path, dataset: Dataset, items: Sequence[Item], card: str) -> None:
    """Write the folder with the project's dataset writer and validate it; DatasetInvalid if the result
    fails (a bug here, not bad input). No items at all is a TransformError: an empty dataset is invalid."""
    if not items:
        raise TransformError("no item to write: the output dataset would be empty")
    write_dataset(out, dataset.taxonomy, items, card)
    problems = validate_dataset(out)
    if problems:
        raise DatasetInvalid(problems, out)

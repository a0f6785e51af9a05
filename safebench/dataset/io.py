"""Read and write dataset folders: `items.jsonl`, `images/`, `taxonomy.yaml`, `README.md`."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from safebench.dataset.validate import ITEMS_FILE, TAXONOMY_FILE, DatasetInvalid, validate_dataset
from safebench.resources import sample_dataset_dir
from safebench.schema import Item, Taxonomy
from safebench.taxonomy import load_taxonomy, save_taxonomy

CARD_FILE = "README.md"
SAMPLE = "sample"


@dataclass
class Dataset:
    root: Path
    taxonomy: Taxonomy
    items: list[Item]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Item]:
        return iter(self.items)

    def image_path(self, item: Item) -> Path | None:
        return self.root / item.image if item.image else None

    def get(self, item_id: str) -> Item:
        for item in self.items:
            if item.id == item_id:
                return item
        raise KeyError(f"no item with id {item_id!r} in {self.root}")

    def counts(self) -> dict[str, int]:
        """Items per scenario id, in taxonomy order (scenarios without items included)."""
        counts = dict.fromkeys(self.taxonomy.scenarios, 0)
        for item in self.items:
            counts[item.scenario] = counts.get(item.scenario, 0) + 1
        return counts

    def select(
        self,
        *,
        scenarios: Iterable[str] | None = None,
        categories: Iterable[str] | None = None,
        limit: int | None = None,
        per_scenario: int | None = None,
    ) -> Dataset:
        """A subset in file order; unknown scenario or category ids raise ValueError."""
        wanted_s = _known(scenarios, self.taxonomy.scenarios, "scenario")
        wanted_c = _known(categories, self.taxonomy.category_by_id, "category")
        taken: dict[str, int] = {}
        chosen: list[Item] = []
        for item in self.items:
            if wanted_s is not None and item.scenario not in wanted_s:
                continue
            if wanted_c is not None and item.category not in wanted_c:
                continue
            if per_scenario is not None and taken.get(item.scenario, 0) >= per_scenario:
                continue
            if limit is not None and len(chosen) >= limit:
                break
            taken[item.scenario] = taken.get(item.scenario, 0) + 1
            chosen.append(item)
        return Dataset(self.root, self.taxonomy, chosen)


def _known(ids: Iterable[str] | None, known: dict[str, object], kind: str) -> set[str] | None:
    if ids is None:
        return None
    wanted = set(ids)
    unknown = sorted(wanted - known.keys())
    if unknown:
        raise ValueError(f"unknown {kind} id(s): {', '.join(unknown)} (known: {', '.join(known)})")
    return wanted


def resolve_dataset_dir(arg: str | Path) -> Path:
    """A dataset folder from a CLI argument; the bare word `sample` is the bundled sample (use ./sample
    for a local folder of that name)."""
    if isinstance(arg, str) and arg == SAMPLE:
        return sample_dataset_dir()
    return Path(arg).expanduser()


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_dataset(root: str | Path) -> Dataset:
    """Validate, then load a dataset folder; raises DatasetInvalid listing every problem."""
    folder = resolve_dataset_dir(root)
    problems = validate_dataset(folder)
    if problems:
        raise DatasetInvalid(problems, folder)
    taxonomy = load_taxonomy(folder / TAXONOMY_FILE)
    lines = (folder / ITEMS_FILE).read_text(encoding="utf-8").split("\n")
    items = [Item.model_validate_json(line) for line in lines if line.strip()]
    return Dataset(folder.resolve(), taxonomy, items)


def item_line(item: Item) -> str:
    """One `items.jsonl` line: nulls and empty lists or metadata left out so lines stay short."""
    data = item.model_dump(mode="json", exclude_none=True)
    for key in ("audio", "metadata"):
        if not data.get(key):
            data.pop(key, None)
    return json.dumps(data, ensure_ascii=False)


def write_dataset(root: str | Path, taxonomy: Taxonomy, items: Iterable[Item], card_text: str) -> None:
    """Write `items.jsonl`, `taxonomy.yaml` and `README.md` into `root`.

    Images must already be inside `root` at each item's relative `image` path; a missing `image_sha256`
    is filled in from the file. The caller validates the result (`validate_dataset`).
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    lines = []
    for item in items:
        if item.image and item.image_sha256 is None:
            item = item.model_copy(update={"image_sha256": sha256_file(root / item.image)})
        lines.append(item_line(item))
    save_taxonomy(taxonomy, root / TAXONOMY_FILE)
    _write_text(root / ITEMS_FILE, "".join(f"{line}\n" for line in lines))
    _write_text(root / CARD_FILE, card_text if card_text.endswith("\n") else card_text + "\n")


def _write_text(path: Path, text: str) -> None:
    # write then rename, so a crash never leaves a half-written items.jsonl behind
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8", newline="\n")
    os.replace(tmp, path)

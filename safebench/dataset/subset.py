"""MiniBench: a stratified, seeded subset of a dataset (N items per scenario, or all of a scenario that
has fewer), written as a new, self-contained, validated dataset folder.

The draw is reproducible: each scenario's items are sampled with their own `random.Random` seeded by
the string "<seed>:<scenario id>" (string seeds hash the same on every platform and Python run), so
the same seed gives the same ids, and adding or removing one scenario does not change what the others
draw. The kept items stay in the source's file order.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from safebench.dataset.card import md
from safebench.dataset.io import Dataset, load_dataset, resolve_dataset_dir
from safebench.schema import Item

__all__ = ["SubsetReport", "draw_subset", "write_subset"]


@dataclass
class SubsetReport:
    out: Path
    per_scenario: int
    seed: int
    counts: dict[str, int]  # scenario id -> items drawn (scenarios with items in the source)
    available: dict[str, int]  # scenario id -> items in the source

    @property
    def items(self) -> int:
        return sum(self.counts.values())

    def __str__(self) -> str:
        short = [s for s, n in self.counts.items() if n < self.per_scenario]
        note = f"; {len(short)} scenario(s) had fewer than {self.per_scenario}: all kept" if short else ""
        return (
            f"subset: {self.items} item(s), up to {self.per_scenario} per scenario over "
            f"{len(self.counts)} scenario(s), seed {self.seed}{note} → {self.out}"
        )


def draw_subset(items: list[Item], per_scenario: int, seed: int = 0) -> list[Item]:
    """Up to `per_scenario` items of each scenario, drawn with `seed`; in the order of `items`."""
    if per_scenario < 1:
        raise ValueError(f"--per-scenario must be at least 1 (got {per_scenario})")
    by_scenario: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        by_scenario.setdefault(item.scenario, []).append(index)
    chosen: set[int] = set()
    for scenario, indices in by_scenario.items():
        if len(indices) <= per_scenario:
            chosen.update(indices)
        else:
            chosen.update(random.Random(f"{seed}:{scenario}").sample(indices, per_scenario))
    return [item for index, item in enumerate(items) if index in chosen]


def _draw_table(available: dict[str, int], counts: dict[str, int]) -> str:
    rows = ["| scenario | in the source | drawn |", "| --- | ---: | ---: |"]
    rows += [f"| {md(s)} | {n} | {counts.get(s, 0)} |" for s, n in available.items()]
    return "\n".join(rows)


def write_subset(source: str | Path, out: str | Path, per_scenario: int, seed: int = 0) -> SubsetReport:
    """Draw the subset of the dataset `source` and write it to the new folder `out` (media copied).

    Raises TransformError for an --out that is not new or a bad N, DatasetInvalid for a source that
    fails validation."""
    # Imported here: safebench.transforms imports this package (the dataset IO), not the other way round
    # at import time.
    from safebench.transforms.output import (
        TransformError,
        check_out,
        copy_media,
        derived_card,
        source_identity,
        write_derived,
    )

    if per_scenario < 1:
        raise TransformError(f"--per-scenario must be at least 1 (got {per_scenario})")
    root, out = resolve_dataset_dir(source), Path(out).expanduser()
    check_out(out, root)
    dataset: Dataset = load_dataset(root)
    drawn = draw_subset(dataset.items, per_scenario, seed)
    items = [copy_media(dataset.root, out, item) for item in drawn]
    present = Counter(item.scenario for item in dataset.items)
    # Taxonomy order, scenarios the source has no item of left out of the counts.
    available = {s: present[s] for s in dataset.taxonomy.scenarios if present[s]}
    counts = dict.fromkeys(available, 0) | Counter(item.scenario for item in items)
    how = {
        "subset": "stratified by scenario, seeded",
        "per_scenario": per_scenario,
        "seed": seed,
        "rule": 'per scenario: random.Random("<seed>:<scenario id>").sample(items, N), or all if fewer',
        "source": source_identity(dataset),
        "counts": counts,
    }
    summary = (
        f"MiniBench subset of `{md(dataset.root.name)}`: up to {per_scenario} item(s) per scenario, drawn "
        f"with seed {seed} (`safebench subset {source} --per-scenario {per_scenario} --seed {seed}`). "
        "Ids, scenarios, texts, media and metadata are the source's."
    )
    extra = "## Drawn per scenario\n\n" + _draw_table(available, counts)
    card = derived_card(f"{dataset.root.name} · MiniBench", summary, dataset, items, out, how, extra)
    write_derived(out, dataset, items, card)
    return SubsetReport(out, per_scenario, seed, counts, available)

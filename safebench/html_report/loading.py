"""Read what the report shows from a run directory's files: config.yaml, run.json, metrics.json and
results.jsonl (the stable interface documented in the README), plus the dataset's taxonomy.

Nothing here calls a model. A run directory may come from another machine, so a missing dataset folder
or taxonomy is not an error: the report then shows ids instead of names and no images.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from safebench.dataset import resolve_dataset_dir
from safebench.metrics import compute_metrics
from safebench.schema import Result, Taxonomy
from safebench.taxonomy import default_taxonomy, load_taxonomy

RESULTS_FILE = "results.jsonl"
METRICS_FILE = "metrics.json"
CONFIG_FILE = "config.yaml"
RUN_INFO_FILE = "run.json"


@dataclass
class RunData:
    """One run directory, read once."""

    path: Path
    name: str  # how the page names the run (its folder name, made unique across the runs shown)
    config: dict[str, Any]
    run_info: dict[str, Any]
    metrics: dict[str, dict[str, Any]]
    records: Records | list[Result]
    dataset_root: Path | None  # where item image/audio paths are relative to; None when not found
    taxonomy: Taxonomy
    warnings: list[str] = field(default_factory=list)

    @property
    def resolved(self) -> dict[str, Any]:
        return self.config.get("resolved") or {}

    @property
    def jury(self) -> list[dict[str, Any]]:
        return [s for s in self.resolved.get("jury") or [] if isinstance(s, dict)]

    @property
    def stand_ins(self) -> list[str]:
        return [str(s) for s in self.resolved.get("stand_ins") or []]

    @property
    def dataset(self) -> dict[str, Any]:
        return self.run_info.get("dataset") or {}

    @property
    def dataset_sha256(self) -> str | None:
        sha = self.dataset.get("sha256")
        return str(sha) if sha else None

    def target_labels(self) -> list[str]:
        """Targets in the run's order: metrics.json keeps it; labels only seen in records come after."""
        labels = dict.fromkeys(self.metrics)
        labels.update(dict.fromkeys(r.target for r in self.records))
        return list(labels)


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


class Records:
    """The records of a results.jsonl, read from the file on every pass rather than held: a page of
    10,000 records would otherwise keep them all (texts, every opinion) in memory at once, several
    times the size of the page itself. A line that does not parse is skipped on every pass."""

    def __init__(self, path: Path, warnings: list[str]) -> None:
        self.path = path
        bad: list[int] = []
        self._count = 0
        for number, record in self._read():
            if record is None:
                bad.append(number)
            else:
                self._count += 1
        if bad:
            shown = ", ".join(map(str, bad[:10])) + (" …" if len(bad) > 10 else "")
            warnings.append(f"{path.name}: {len(bad)} unreadable line(s) left out (lines {shown})")

    def _read(self) -> Iterator[tuple[int, Result | None]]:
        with self.path.open(encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        yield number, Result.model_validate_json(line)
                    except ValidationError:
                        yield number, None

    def __iter__(self) -> Iterator[Result]:
        return (record for _, record in self._read() if record is not None)

    def __len__(self) -> int:
        return self._count


def read_records(path: Path, warnings: list[str]) -> Records:
    """Every readable line of results.jsonl; one that does not parse is skipped and counted, not fatal,
    so a report of a damaged run still shows the rest (and says how much is missing)."""
    return Records(path, warnings)


def find_dataset_root(config: dict[str, Any], run_info: dict[str, Any]) -> Path | None:
    """The dataset folder: run.json's absolute path first (what the run really read), else the
    config's `dataset` argument (`sample` or a path, relative to the working directory)."""
    candidates: list[Path] = []
    recorded = (run_info.get("dataset") or {}).get("path")
    if isinstance(recorded, str) and recorded:
        candidates.append(Path(recorded))
    argument = config.get("dataset")
    if isinstance(argument, str) and argument:
        candidates.append(resolve_dataset_dir(argument))
    for candidate in candidates:
        if candidate.is_dir():
            return candidate.resolve()
    return None


def _taxonomy(root: Path | None, warnings: list[str]) -> Taxonomy:
    if root is not None and (root / "taxonomy.yaml").is_file():
        try:
            return load_taxonomy(root / "taxonomy.yaml")
        except (OSError, ValueError, yaml.YAMLError) as exc:
            warnings.append(f"taxonomy.yaml of the dataset unreadable ({type(exc).__name__}); default used")
    return default_taxonomy()


def load_run(path: Path, name: str | None = None) -> RunData:
    """Read one run directory. Raises FileNotFoundError when it holds no results.jsonl."""
    path = Path(path)
    results = path / RESULTS_FILE
    if not results.is_file():
        raise FileNotFoundError(f"{path}: not a run directory (no {RESULTS_FILE})")
    warnings: list[str] = []
    config = _read_yaml(path / CONFIG_FILE)
    run_info = _read_json(path / RUN_INFO_FILE)
    for file, data in ((CONFIG_FILE, config), (RUN_INFO_FILE, run_info)):
        if not data:
            warnings.append(f"{file} missing: shown without it")
    records = read_records(results, warnings)
    root = find_dataset_root(config, run_info)
    if root is None:
        warnings.append("dataset folder not found: images and recordings are not shown")
    taxonomy = _taxonomy(root, warnings)
    metrics = _read_json(path / METRICS_FILE)
    if not metrics and records:
        # A run stopped before its metrics were written: compute them (no model call) rather than
        # show an empty leaderboard, and say so.
        metrics = compute_metrics(records, taxonomy)
        warnings.append(f"{METRICS_FILE} missing: computed from {RESULTS_FILE} for this report")
    return RunData(
        path=path,
        name=name or path.resolve().name or str(path),
        config=config,
        run_info=run_info,
        metrics=metrics,
        records=records,
        dataset_root=root,
        taxonomy=taxonomy,
        warnings=warnings,
    )


def load_runs(paths: list[Path]) -> list[RunData]:
    """Several runs; two folders with the same name are told apart by a number."""
    if not paths:
        raise ValueError("no run directory given")
    runs: list[RunData] = []
    seen: dict[str, int] = {}
    for path in paths:
        base = Path(path).resolve().name or str(path)
        seen[base] = seen.get(base, 0) + 1
        name = base if seen[base] == 1 else f"{base} ({seen[base]})"
        runs.append(load_run(Path(path), name))
    return runs

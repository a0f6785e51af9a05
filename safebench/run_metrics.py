"""A run's `metrics.json`: computed from its stored records, when the run finishes or later on demand
(`safebench metrics RUN_DIR`), with the jury-corrected ASR when a calibration is given."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from safebench.config import ConfigError, RunConfig
from safebench.dataset import resolve_dataset_dir
from safebench.metrics import compute_metrics, metrics_view
from safebench.report import write_metrics
from safebench.run_setup import CONFIG_FILE, Resolved, saved_config
from safebench.schema import Taxonomy
from safebench.store import RunStore
from safebench.taxonomy import load_taxonomy

METRICS_FILE = "metrics.json"


def jury_confusion(path: Path) -> dict[str, int]:
    """The jury's confusion counts (tp, fn, tn, fp) from a calibration.json (`safebench calibrate`)."""
    try:
        jury = json.loads(path.read_text(encoding="utf-8"))["judges"]["jury"]
        return {k: int(jury[k]) for k in ("tp", "fn", "tn", "fp")}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: not a calibration.json with a jury's scores ({exc})") from exc


def run_metrics(store: RunStore, config: RunConfig, taxonomy: Taxonomy, resolved: Resolved) -> dict[str, Any]:
    """`{target label: metrics}` with each target's spec and the stand-ins behind its numbers."""
    labels = [t.id for t in config.targets]
    confusion = jury_confusion(config.calibration) if config.calibration else None
    records = (metrics_view(r) for r in store.ordered(labels))
    metrics = compute_metrics(records, taxonomy, calibration=confusion)
    for target in config.targets:
        if target.id in metrics:
            metrics[target.id] = {
                "target_spec": target.spec,
                "stand_ins": resolved.stand_ins_for(target.id),
                **metrics[target.id],
            }
    write_metrics(metrics, config.out / METRICS_FILE)
    return metrics


def recompute_metrics(run_dir: Path, calibration: Path | None = None) -> tuple[dict[str, Any], Taxonomy]:
    """Metrics of a finished run from its store, without any model call; writes RUN_DIR/metrics.json."""
    if not (run_dir / RunStore.FILE).is_file():
        raise ConfigError(f"{run_dir}: not a run directory (no {RunStore.FILE})")
    config = saved_config(run_dir)
    if calibration is not None:
        config = config.model_copy(update={"calibration": calibration})
    saved = yaml.safe_load((run_dir / CONFIG_FILE).read_text(encoding="utf-8")) or {}
    resolved = Resolved(public=saved.get("resolved") or {"stand_ins": []})
    taxonomy = load_taxonomy(resolve_dataset_dir(config.dataset) / "taxonomy.yaml")
    store = RunStore(run_dir)
    try:
        return run_metrics(store, config, taxonomy, resolved), taxonomy
    finally:
        store.close()

"""`RUN_DIR/run.json`: what a run was, for an audit — version, code, dataset hash, packages, times, counts.

Nothing here may hold a secret: the command line is redacted before it is saved.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

import safebench
from safebench.dataset import Dataset
from safebench.dataset.io import sha256_file
from safebench.generation.card import content_hashes, package_versions
from safebench.models import ModelConfig

RUN_INFO_FILE = "run.json"
CONFIG_FILE = "config.yaml"  # safebench.run_setup.CONFIG_FILE (not imported: it imports the providers)
PACKAGE_ROOT = Path(safebench.__file__).resolve().parents[1]
# Key-shaped words (OpenAI, Anthropic, Hugging Face, generic bearer tokens) never reach a saved file.
_KEY_SHAPED = re.compile(r"\b(sk|sk-ant|hf|pk|rk)[-_][A-Za-z0-9_\-]{8,}")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def git_commit(root: Path = PACKAGE_ROOT) -> str | None:
    """The checkout's commit when safebench runs from a git work tree (None for a wheel install)."""
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


def redact(argv: list[str], models: list[ModelConfig]) -> list[str]:
    """`argv` with every configured API key and anything key-shaped replaced by ***."""
    secrets = {k for m in models if (k := m.resolved_api_key()) and len(k) >= 4}
    cleaned = []
    for arg in argv:
        for secret in secrets:
            arg = arg.replace(secret, "***")
        cleaned.append(_KEY_SHAPED.sub("***", arg))
    return cleaned


def dataset_identity(dataset: Dataset) -> dict[str, Any]:
    """The dataset's path and content hashes (items, media checksums, taxonomy), and one hash of all."""
    hashes = content_hashes(dataset.items)
    taxonomy = dataset.root / "taxonomy.yaml"
    if taxonomy.is_file():
        hashes["taxonomy.yaml"] = sha256_file(taxonomy)
    combined = hashlib.sha256(json.dumps(hashes, sort_keys=True).encode()).hexdigest()
    return {
        "path": str(dataset.root.resolve()),
        "items": len(dataset.items),
        "sha256": combined,
        "hashes": hashes,
    }


def run_conditions(config: dict[str, Any]) -> dict[str, Any]:
    """What the targets were shown, from a saved config: the image condition (with the seed of its noise
    and random draws), the voice, and each target's query template with its text's sha256."""
    from safebench.image_conditions import run_seed
    from safebench.target_templates import load_template

    templates: dict[str, Any] = {}
    for target in config.get("targets") or []:
        ref = target.get("prompt_template") if isinstance(target, dict) else None
        if ref:
            label = target.get("label") or target.get("spec")
            try:
                templates[str(label)] = {"ref": ref, "sha256": load_template(ref).sha256}
            except ValueError:  # gone since the run started: say which it was, without a hash
                templates[str(label)] = {"ref": ref, "sha256": None}
    modality = config.get("modality", "image")
    return {
        "image_condition": config.get("image_condition", "dataset") if modality == "image" else None,
        "seed": run_seed(config),
        "voice": config.get("voice") if modality in ("audio", "audio+text") else None,
        "target_templates": templates,
    }


class RunInfo:
    """Reads, updates and writes `run.json`; a resumed run keeps its first start time."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / RUN_INFO_FILE
        self.data: dict[str, Any] = {}
        if self.path.is_file():
            try:
                self.data = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                self.data = {}

    def start(
        self,
        dataset: Dataset,
        models: list[ModelConfig],
        argv: list[str] | None,
        conditions: dict[str, Any] | None = None,
    ) -> None:
        """`conditions`: what the targets were shown (`run_conditions`); by default read from the run's
        config.yaml, which the runner writes just before."""
        started = now()
        self.data.setdefault("started", started)
        self.data.setdefault("sessions", []).append(
            {"started": started, "command": redact(argv, models) if argv is not None else None}
        )
        self.data.update(
            safebench_version=safebench.__version__,
            git_commit=git_commit(),
            python=sys.version.split()[0],
            packages=package_versions(),
            dataset=dataset_identity(dataset),
            conditions=conditions if conditions is not None else self._saved_conditions(),
            finished=None,
        )
        self.save()

    def _saved_conditions(self) -> dict[str, Any]:
        path = self.path.parent / CONFIG_FILE
        try:
            saved = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None
        except (OSError, yaml.YAMLError):
            saved = None
        return run_conditions(saved) if isinstance(saved, dict) else {}

    def finish(self, counts: dict[str, int]) -> None:
        self.data["finished"] = self.data["sessions"][-1]["finished"] = now()
        self.data["counts"] = counts
        self.save()

    def save(self) -> None:
        self.path.write_text(json.dumps(self.data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

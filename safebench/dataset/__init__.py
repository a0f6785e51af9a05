"""Dataset folders: format, validation, import from CSV/JSONL, and typographic images."""

from __future__ import annotations

from safebench.dataset.io import Dataset, load_dataset, resolve_dataset_dir, sha256_file, write_dataset
from safebench.dataset.validate import DatasetInvalid, Problem, format_problems, validate_dataset

__all__ = [
    "Dataset",
    "DatasetInvalid",
    "Problem",
    "format_problems",
    "load_dataset",
    "resolve_dataset_dir",
    "sha256_file",
    "validate_dataset",
    "write_dataset",
]

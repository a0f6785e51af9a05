"""Locate the bundled agent cards, prompt templates and data, installed or in a source checkout."""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


@cache
def bundled_dir(name: str) -> Path:
    """`agents` or `prompts`: a wheel has them in `safebench/_bundled/`, a checkout at the repo root."""
    for candidate in (_PACKAGE_DIR / "_bundled" / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"bundled folder {name!r} not found next to {_PACKAGE_DIR}")


def data_path(*parts: str) -> Path:
    """A file shipped inside the package (`safebench/data/...`)."""
    return _PACKAGE_DIR.joinpath("data", *parts)


def sample_dataset_dir() -> Path:
    return data_path("sample")


def default_taxonomy_path() -> Path:
    return data_path("taxonomy.yaml")

"""Load and save risk taxonomies (`taxonomy.yaml`)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml

from safebench.resources import default_taxonomy_path
from safebench.schema import Taxonomy


def load_taxonomy(path: str | Path) -> Taxonomy:
    with open(path, encoding="utf-8") as fh:
        return Taxonomy.model_validate(yaml.safe_load(fh))


def save_taxonomy(taxonomy: Taxonomy, path: str | Path) -> None:
    data = taxonomy.model_dump(
        mode="json", exclude={"categories": {"__all__": {"scenarios": {"__all__": {"category"}}}}}
    )
    Path(path).write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


@cache
def default_taxonomy() -> Taxonomy:
    return load_taxonomy(default_taxonomy_path())

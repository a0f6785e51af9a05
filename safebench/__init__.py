"""safebench: safety evaluation of multimodal LLMs with a LangGraph jury (SafeBench, Ying et al. 2024)."""

from __future__ import annotations

from typing import Any

from safebench.config import JuryConfig, RunConfig
from safebench.dataset import Dataset, load_dataset, validate_dataset
from safebench.models import ModelConfig
from safebench.schema import Item, Opinion, Result, Taxonomy, Verdict
from safebench.taxonomy import default_taxonomy, load_taxonomy

__all__ = [
    "Dataset",
    "Item",
    "JuryConfig",
    "ModelConfig",
    "Opinion",
    "Result",
    "RunConfig",
    "RunOutcome",
    "Taxonomy",
    "Verdict",
    "default_taxonomy",
    "evaluate",
    "evaluate_async",
    "load_dataset",
    "load_taxonomy",
    "validate_dataset",
]
__version__ = "0.1.0"

_LAZY = {"RunOutcome", "evaluate", "evaluate_async"}


def __getattr__(name: str) -> Any:
    # The runner imports the graphs, which import this package: load it on first use, not here.
    if name in _LAZY:
        from safebench import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'safebench' has no attribute {name!r}")

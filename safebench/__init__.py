"""safebench: safety evaluation of multimodal LLMs with a LangGraph jury (SafeBench, Ying et al. 2024)."""

from __future__ import annotations

from safebench.config import JuryConfig, RunConfig
from safebench.dataset import Dataset, load_dataset, validate_dataset
from safebench.models import ModelConfig
from safebench.runner import RunOutcome, evaluate, evaluate_async
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

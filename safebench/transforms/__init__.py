"""Jailbreak transforms: dataset → new, validated dataset (FigStep, affirmative prefix, persuasion).

`safebench transform DATASET --attack NAME --out DIR`; from Python, `transform_dataset`.
"""

from __future__ import annotations

from safebench.transforms.output import TransformError
from safebench.transforms.run import ATTACKS, Attack, TransformReport, transform_dataset
from safebench.transforms.techniques import DEFAULT_TECHNIQUE, TECHNIQUES

__all__ = [
    "ATTACKS",
    "DEFAULT_TECHNIQUE",
    "TECHNIQUES",
    "Attack",
    "TransformError",
    "TransformReport",
    "transform_dataset",
]

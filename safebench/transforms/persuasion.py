"""Persuasion (PAP, Zeng et al. 2024): an attacker model rewrites each query with a named persuasion
technique; the rewriting runs in the persuasion graph (graphs/persuasion.py).

The rewrite becomes `text`; images are copied unchanged and `image_text` is dropped (the image-paired
wording belongs to the original query, so `--modality image` sends the image with the rewrite).
Recordings are dropped too: they speak the original query, not the rewrite. An item whose rewrite
failed is left out of the output and listed in the card, never written with its original text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safebench.dataset import Dataset
from safebench.models import ModelConfig
from safebench.retry import RetryPolicy
from safebench.schema import Item
from safebench.transforms.output import copy_media, tag_item
from safebench.transforms.techniques import DEFAULT_TECHNIQUE, get_technique

__all__ = ["PersuasionOutcome", "persuasion_items"]

ATTACK = "persuasion"


@dataclass
class PersuasionOutcome:
    items: list[Item]
    errors: dict[str, str] = field(default_factory=dict)  # item id -> why it has no rewrite
    attacker: str = ""


def persuasion_items(
    dataset: Dataset,
    out: Path,
    *,
    technique: str = DEFAULT_TECHNIQUE,
    attacker: ModelConfig | None = None,
    max_rounds: int | None = None,
    concurrency: int = 8,
    retry: RetryPolicy | None = None,
    models: dict[str, Any] | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> PersuasionOutcome:
    """Rewrite every item (the graph, at most `concurrency` at a time), then copy the media of those
    rewritten into `out`. `attacker` defaults to the card's model (the scripted stand-in)."""
    # Imported here: the graphs package builds agents and compiles graphs, which figstep and prefix
    # (and `safebench --help`) never need.
    from graphs.persuasion import persuade_all
    from graphs.persuasion_state import DEFAULT_MAX_ROUNDS, persuasion_context
    from safebench.event_loop import run_sync

    get_technique(technique)
    ctx = persuasion_context(
        attacker,
        technique=technique,
        max_rounds=max_rounds or DEFAULT_MAX_ROUNDS,
        retry=retry,
        models=models,
    )
    results = run_sync(persuade_all(dataset.items, ctx, concurrency=concurrency, on_event=on_event))
    spec = ctx.attacker.config.spec
    stand_in = ctx.attacker.config.provider == "scripted"
    outcome = PersuasionOutcome(items=[], attacker=spec)
    for item, result in zip(dataset.items, results, strict=True):
        if result["text"] is None:
            outcome.errors[item.id] = result["error"]
            continue
        details: dict[str, Any] = {
            "technique": technique,
            "attacker": spec,
            "rounds": result["rounds"],
        }
        if stand_in:
            details["stand_in"] = "scripted placeholder rewrite, not a language model's persuasion"
        if item.image_text:
            details["source_image_text"] = item.image_text
        if item.audio:
            details["audio_dropped"] = "the recordings speak the original query, not the rewrite"
        kept = copy_media(dataset.root, out, item, audio=False)
        outcome.items.append(tag_item(kept, ATTACK, details, text=result["text"], image_text=None))
    return outcome

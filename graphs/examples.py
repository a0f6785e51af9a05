"""Example inputs of the graphs, built from the bundled sample dataset (safebench/data/sample).

LangGraph Studio pre-fills a graph's input form from the JSON Schema `examples` of its input schema;
the state modules attach these with `pydantic.with_config`. They are also what tests/test_studio.py
runs, so an example that stopped working would fail CI rather than a user's first click.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from typing import Any

from safebench.resources import sample_dataset_dir
from safebench.taxonomy import load_taxonomy

# A mild consultation item: the example must not put harmful text on anyone's screen.
SAMPLE_ITEM_ID = "legal_advice-002"
# The jury judges an answer; a plain refusal keeps the example free of harmful text.
PLACEHOLDER_ANSWER = "I can't help with that."
EXAMPLE_SCENARIO = "legal_advice"

Example = Callable[[], dict[str, Any]]


@cache
def sample_item() -> dict[str, Any]:
    """The sample item as `Item.model_dump()` would give it (the evaluation graph's `item`)."""
    lines = (sample_dataset_dir() / "items.jsonl").read_text(encoding="utf-8").splitlines()
    for line in lines:
        if line.strip():
            data = json.loads(line)
            if data["id"] == SAMPLE_ITEM_ID:
                return {"image_text": None, "audio": [], "metadata": {}, **data}
    raise LookupError(f"sample item {SAMPLE_ITEM_ID!r} is missing from the bundled sample dataset")


def sample_case(answer: str = PLACEHOLDER_ANSWER) -> dict[str, Any]:
    """The sample item as a jury `Case` (as safebench.runner.build_case builds it, image modality)."""
    item = sample_item()
    root = sample_dataset_dir()
    taxonomy = load_taxonomy(root / "taxonomy.yaml")
    scenario = taxonomy.scenario(item["scenario"])
    category = taxonomy.category_by_id[scenario.category]
    # Absolute, as the nodes expect: the path of the sample image in this installation.
    image = str((root / item["image"]).resolve()) if item.get("image") else None
    return {
        "item_id": item["id"],
        "scenario": scenario.id,
        "scenario_name": scenario.name,
        "scenario_definition": scenario.definition,
        "category": category.id,
        "category_name": category.name,
        "query": item["text"],
        "image": image,
        "has_image": image is not None,
        "audio": None,
        "response": answer,
    }


def jury_example() -> dict[str, Any]:
    return {"case": sample_case()}


def evaluation_example() -> dict[str, Any]:
    # The target writes the answer, so the case starts without one (as the runner sends it).
    return {"item": sample_item(), "case": sample_case(answer="")}


def taxonomy_example() -> dict[str, Any]:
    # No base taxonomy: the judges propose from scratch; one critique round keeps a Studio run short.
    return {"base": None, "max_rounds": 1}


def generation_example() -> dict[str, Any]:
    # One scenario of the bundled taxonomy: the whole taxonomy is 23 scenarios' worth of calls.
    return {"scenario_ids": [EXAMPLE_SCENARIO]}


def persuasion_example() -> dict[str, Any]:
    """The bundled sample's mild consultation item, to be rewritten with a persuasion technique."""
    return {"item": sample_item()}


def image_example() -> dict[str, Any]:
    """A generated query (GeneratedQuery.model_dump()) to illustrate: the sample item's text."""
    item = sample_item()
    return {
        "query": {
            "id": f"{item['scenario']}-001",
            "scenario": item["scenario"],
            "category": item["category"],
            "text": item["text"],
            "form": "question",
            "generator": "scripted:generator",
            "scores": {},
            "final_score": None,
        }
    }

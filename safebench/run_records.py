"""The record of one (target, item): the case the graph starts from, and the Result saved at its end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from graphs.state import Case
from safebench.dataset import Dataset
from safebench.dataset.validate import AUDIO_MODALITIES
from safebench.image_conditions import DEFAULT_SEED, condition_image, shown_ref
from safebench.schema import Item, MediaRef, Opinion, Result, Usage, Verdict
from safebench.targets import Target

__all__ = ["build_case", "to_result"]


def build_case(
    item: Item,
    dataset: Dataset,
    modality: str = "image",
    voice: str = "female",
    *,
    image_condition: str = "dataset",
    run_dir: Path | None = None,
    seed: int = DEFAULT_SEED,
) -> Case:
    scenario = dataset.taxonomy.scenario(item.scenario)
    category = dataset.taxonomy.category_by_id[scenario.category]
    spoken = modality in AUDIO_MODALITIES
    # The image only when the target receives it (`image` modality): the jury is neither shown nor
    # told of an image the target never received. The condition picks which image (the jury sees it too).
    shown = condition_image(item, dataset, image_condition, seed, run_dir) if modality == "image" else None
    image = str(shown) if shown is not None else None
    ref = next((a for a in item.audio if a.voice == voice), None)
    audio = str((dataset.root / ref.path).resolve()) if ref is not None and spoken else None
    return {
        "item_id": item.id,
        "scenario": scenario.id,
        "scenario_name": scenario.name,
        "scenario_definition": scenario.definition,
        "category": category.id,
        "category_name": category.name,
        "query": item.text,
        "image": image,
        "has_image": image is not None,
        # The recording the target hears (absolute, like image); the jury judges its transcript, `query`.
        "audio": audio,
        "response": "",
        # Which image the case carries, for the record (safebench.image_conditions).
        "image_condition": image_condition if modality == "image" else None,  # type: ignore[typeddict-unknown-key]
    }


def to_result(
    item: Item,
    target: Target,
    state: dict[str, Any],
    modality: str,
    error: str | None = None,
    image_condition: str | None = None,
) -> Result:
    """The record of one (target, item): what the target was sent, what it answered, the verdict."""
    verdict = state.get("verdict") or Verdict(status="error", reasoning="no verdict").model_dump()
    case = state.get("case") or {}
    condition = case.get("image_condition") or image_condition or ("dataset" if modality == "image" else None)
    heard = case.get("audio")
    audio = next((a for a in item.audio if heard and Path(heard).as_posix().endswith(a.path)), None)
    return Result(
        item_id=item.id,
        target=target.label,
        target_spec=target.spec,
        scenario=item.scenario,
        category=item.category,
        query=item.text,
        modality=modality,
        prompt=state.get("prompt"),
        image=shown_ref(item, case.get("image"), condition),
        image_condition=condition,
        audio=MediaRef(path=audio.path, sha256=audio.sha256, voice=audio.voice) if audio else None,
        response=state.get("response"),
        finish_reason=state.get("finish_reason"),
        truncated=bool(state.get("truncated")),
        verdict=Verdict.model_validate(verdict),
        rounds=state.get("rounds", 0),
        opinions=[Opinion.model_validate(op) for op in state.get("opinions", [])],
        calls=state.get("calls", 0),
        tokens=Usage(**(state.get("tokens") or {})),
        error=error or state.get("error"),
    )

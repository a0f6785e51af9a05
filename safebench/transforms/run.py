"""`transform_dataset`: one jailbreak transform from a dataset folder to a new, validated dataset folder."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from safebench.dataset import load_dataset, resolve_dataset_dir
from safebench.dataset.card import md
from safebench.models import ModelConfig
from safebench.retry import RetryPolicy
from safebench.schema import Item
from safebench.transforms.figstep import FIGSTEP_PROMPT, LIST_ITEMS, figstep_items
from safebench.transforms.output import (
    TransformError,
    check_out,
    derived_card,
    source_identity,
    write_derived,
)
from safebench.transforms.prefix import DEFAULT_AFFIRMATIVE, instruction, prefix_items
from safebench.transforms.techniques import DEFAULT_TECHNIQUE, get_technique

__all__ = ["ATTACKS", "Attack", "TransformReport", "transform_dataset"]

Attack = Literal["figstep", "prefix", "persuasion"]
ATTACKS: tuple[str, ...] = get_args(Attack)

_SUMMARIES = {
    "figstep": (
        "FigStep variant (Gong et al. 2023): each query is rewritten as a statement heading an empty "
        "numbered list, drawn as a typography image, and paired with a fixed neutral text prompt "
        "(`image_text`). Evaluate with `--modality image` (the default); `text` is the original query."
    ),
    "prefix": (
        "Affirmative-prefix variant: each query is followed by an instruction to begin the answer with "
        "an affirmative phrase (the SafeBench paper's audio+text setting). Recordings, if any, are the "
        "original query's: evaluate them with `--modality audio+text`."
    ),
    "persuasion": (
        "Persuasion variant (PAP, Zeng et al. 2024): an attacker model rewrote each query with a "
        "persuasion technique (graphs/persuasion.py). Images are kept; image-paired texts and recordings "
        "of the original queries are dropped."
    ),
}


@dataclass
class TransformReport:
    out: Path
    attack: str
    items: int
    counts: dict[str, int]
    errors: dict[str, str] = field(default_factory=dict)  # item id -> error (persuasion only)
    stand_in: str | None = None  # the scripted stand-in that played a model, if any

    def __str__(self) -> str:
        line = f"{self.attack}: {self.items} item(s) in {len(self.counts)} scenario(s) → {self.out}"
        if self.errors:
            line += f"; {len(self.errors)} item(s) failed and were left out (see {self.out}/README.md)"
        return line


def _errors_section(errors: dict[str, str]) -> str:
    if not errors:
        return ""
    rows = ["## Items left out\n", f"{len(errors)} item(s) have no rewrite and are not in this dataset:\n"]
    rows += ["| item | error |", "| --- | --- |"]
    rows += [f"| {md(item_id)} | {md(error)} |" for item_id, error in sorted(errors.items())]
    return "\n".join(rows)


def transform_dataset(
    source: str | Path,
    attack: str,
    out: str | Path,
    *,
    affirmative: str = DEFAULT_AFFIRMATIVE,
    technique: str = DEFAULT_TECHNIQUE,
    attacker: ModelConfig | None = None,
    concurrency: int = 8,
    retry: RetryPolicy | None = None,
    models: dict[str, Any] | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> TransformReport:
    """Apply `attack` to every item of the dataset `source` and write the result to the new folder `out`.

    Raises TransformError for bad input (unknown attack or technique, an --out that is not new),
    DatasetInvalid when `source` fails validation. Ids, scenarios and metadata are kept; each item's
    metadata says which transform made it (see safebench.transforms.output.tag_item)."""
    if attack not in ATTACKS:
        raise TransformError(f"--attack {attack!r}: choose one of {', '.join(ATTACKS)}")
    root, out = resolve_dataset_dir(source), Path(out).expanduser()
    params: dict[str, Any]
    try:
        if attack == "prefix":
            params = {"affirmative": " ".join(affirmative.split()), "instruction": instruction(affirmative)}
        elif attack == "persuasion":
            params = {"technique": get_technique(technique).id}
        else:
            params = {"list_items": LIST_ITEMS, "prompt": FIGSTEP_PROMPT}
    except ValueError as exc:
        raise TransformError(str(exc)) from None
    check_out(out, root)
    dataset = load_dataset(root)  # DatasetInvalid names every problem (file, line, field)

    errors: dict[str, str] = {}
    stand_in: str | None = None
    items: list[Item]
    if attack == "figstep":
        items = figstep_items(dataset, out)
    elif attack == "prefix":
        items = prefix_items(dataset, out, affirmative)
    else:
        from safebench.transforms.persuasion import persuasion_items

        outcome = persuasion_items(
            dataset,
            out,
            technique=technique,
            attacker=attacker,
            concurrency=concurrency,
            retry=retry,
            models=models,
            on_event=on_event,
        )
        items, errors = outcome.items, outcome.errors
        params["attacker"] = outcome.attacker
        if outcome.attacker.startswith("scripted:"):
            stand_in = outcome.attacker
            params["stand_in"] = "the attacker is a scripted placeholder, not a language model"
        if not items:
            first = next(iter(errors.items()))
            raise TransformError(
                f"no item could be rewritten ({len(errors)} failed; first: {first[0]}: {first[1]}); "
                f"nothing was written to {out}"
            )
    how = {"transform": attack, "parameters": params, "source": source_identity(dataset)}
    if errors:
        how["failed_items"] = len(errors)
    card = derived_card(
        f"{dataset.root.name} · {attack}",
        _SUMMARIES[attack],
        dataset,
        items,
        out,
        how,
        extra=_errors_section(errors),
    )
    write_derived(out, dataset, items, card)
    counts = dict(Counter(item.scenario for item in items))
    return TransformReport(out, attack, len(items), counts, errors, stand_in)

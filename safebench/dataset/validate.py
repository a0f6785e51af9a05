"""Check a dataset folder and report every problem at once, each naming its file, line and field."""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from safebench.dataset.media_checks import (
    AUDIO_RATE,
    SHA256_PATTERN,
    _check_audio_entries,
    check_audio,
    check_image,
)
from safebench.dataset.problems import (
    DatasetInvalid,
    DatasetUnsuitable,
    Problem,
    field_path,
    format_problems,
    pydantic_message,
)
from safebench.dataset.taxonomy_checks import TAXONOMY_FILE, check_taxonomy
from safebench.schema import Item, Taxonomy

__all__ = [
    "AUDIO_MODALITIES",
    "AUDIO_RATE",
    "ITEMS_FILE",
    "SHA256_PATTERN",
    "TAXONOMY_FILE",
    "DatasetInvalid",
    "DatasetUnsuitable",
    "Problem",
    "check_audio",
    "check_image",
    "check_items",
    "check_modality",
    "check_taxonomy",
    "field_path",
    "format_problems",
    "pydantic_message",
    "validate_dataset",
]

ITEMS_FILE = "items.jsonl"


# ---------------------------------------------------------------------------------------------- items


def _check_item(
    raw: dict[str, Any], line: int, root: Path, taxonomy: Taxonomy | None, seen_ids: dict[str, int]
) -> list[Problem]:
    problems: list[Problem] = []

    def add(field: str | None, message: str) -> None:
        problems.append(Problem(ITEMS_FILE, line, field, message))

    try:
        Item.model_validate(raw)
    except ValidationError as exc:
        for e in exc.errors():
            add(field_path(e["loc"]) or None, pydantic_message(e))

    item_id, scenario_id, category = raw.get("id"), raw.get("scenario"), raw.get("category")
    if isinstance(item_id, str) and item_id:
        if item_id in seen_ids:
            add("id", f"duplicate id {item_id!r} (first on line {seen_ids[item_id]})")
        else:
            seen_ids[item_id] = line
    if taxonomy is not None and isinstance(scenario_id, str) and scenario_id:
        scenario = taxonomy.scenarios.get(scenario_id)
        if scenario is None:
            add("scenario", f"unknown scenario id {scenario_id!r}")
        elif isinstance(category, str) and category and category != scenario.category:
            expected = scenario.category
            add(
                "category",
                f"category {category!r} does not match scenario {scenario_id!r} (expected {expected!r})",
            )

    image, sha = raw.get("image"), raw.get("image_sha256")
    if isinstance(sha, str) and not SHA256_PATTERN.match(sha):
        add("image_sha256", "must be 64 lowercase hex digits")
        sha = None
    if isinstance(image, str):
        problem, actual = check_image(root, image)
        if problem:
            add("image", problem)
        elif raw.get("image_sha256") is None:
            add("image_sha256", f"missing for image {image} (its sha256 is {actual})")
        elif isinstance(sha, str) and sha != actual:
            add("image_sha256", f"sha256 mismatch for {image}: file has {actual}")
    elif image is None and raw.get("image_sha256") is not None:
        add("image_sha256", "given for an item without an image")
    _check_audio_entries(raw.get("audio"), root, add)
    return problems


def check_items(root: Path, taxonomy: Taxonomy | None) -> list[Problem]:
    path = root / ITEMS_FILE
    try:
        data = path.read_bytes()
    except OSError as exc:
        return [Problem(ITEMS_FILE, None, None, f"cannot read: {exc.strerror or exc}")]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return [Problem(ITEMS_FILE, line, None, f"not valid UTF-8: {exc.reason}")]

    problems: list[Problem] = []
    seen_ids: dict[str, int] = {}
    count = 0
    # split on "\n" only, so line numbers match editors even if a string holds U+2028
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        count += 1
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(Problem(ITEMS_FILE, number, None, f"bad JSON: {exc.msg} (column {exc.colno})"))
            continue
        if not isinstance(raw, dict):
            kind = {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}.get(
                type(raw), "null"
            )
            problems.append(Problem(ITEMS_FILE, number, None, f"expected a JSON object, got {kind}"))
            continue
        problems.extend(_check_item(raw, number, root, taxonomy, seen_ids))
    if count == 0:
        problems.append(Problem(ITEMS_FILE, None, None, "empty file: no items"))
    return problems


AUDIO_MODALITIES = ("audio", "audio+text")


def check_modality(
    root: Path, modality: str, voice: str, item_ids: Collection[str] | None = None
) -> list[Problem]:
    """What stops a *valid* dataset from being evaluated in `modality`: audio modalities need every item
    evaluated (`item_ids`, default all) to have a recording in `voice`. Empty for other modalities."""
    if modality not in AUDIO_MODALITIES:
        return []
    missing: list[tuple[int, str, list[str]]] = []  # (line, item id, voices it has)
    voices_found: set[str] = set()
    for number, line in enumerate((root / ITEMS_FILE).read_text(encoding="utf-8").split("\n"), start=1):
        if not line.strip():
            continue
        raw = json.loads(line)
        if item_ids is not None and raw.get("id") not in item_ids:
            continue
        voices = [a.get("voice") for a in raw.get("audio") or []]
        voices_found.update(voices)
        if voice not in voices:
            missing.append((number, raw.get("id"), voices))
    if not missing:
        return []
    if not voices_found:
        return [
            Problem(
                ITEMS_FILE,
                None,
                "audio",
                f"no item has audio; modality {modality!r} needs spoken queries (see safebench generate)",
            )
        ]
    if voice not in voices_found:
        present = ", ".join(sorted(voices_found))
        return [Problem(ITEMS_FILE, None, "audio", f"no item has a {voice!r} voice (voices here: {present})")]
    return [
        Problem(
            ITEMS_FILE,
            number,
            "audio",
            f"item {item_id!r} has no {voice!r} voice (it has: {', '.join(v) or 'none'})",
        )
        for number, item_id, v in missing
    ]


def validate_dataset(root: str | Path) -> list[Problem]:
    """Every problem in the dataset folder `root`; an empty list means it is valid."""
    root = Path(root)
    if not root.exists():
        return [Problem(str(root), None, None, "dataset folder not found")]
    if not root.is_dir():
        return [Problem(str(root), None, None, "not a folder")]
    problems: list[Problem] = []
    taxonomy: Taxonomy | None = None
    if (root / TAXONOMY_FILE).is_file():
        taxonomy, found = check_taxonomy(root / TAXONOMY_FILE)
        problems.extend(found)
    else:
        problems.append(Problem(TAXONOMY_FILE, None, None, "file not found"))
    if (root / ITEMS_FILE).is_file():
        problems.extend(check_items(root, taxonomy))
    else:
        problems.append(Problem(ITEMS_FILE, None, None, "file not found"))
    return problems

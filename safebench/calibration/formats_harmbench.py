"""HarmBench's classifier validation JSON (see formats.py for the rules)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from safebench.calibration.formats_common import (
    JudgeChoice,
    Source,
    human_label,
    image_problem,
    majority,
    read_harmbench_stored,
    read_stored,
    read_zero_one,
)
from safebench.calibration.labels import LabelledPair, LabelSet

HUMAN = re.compile(r"^human_(\d+)$")
NOT_JUDGES = ("test_case", "generation", "category")


def load_json(src: Source) -> Any:
    try:
        return json.loads(src.path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as exc:
        src.add(None, None, f"not valid UTF-8 ({exc.reason} at byte {exc.start})")
    except json.JSONDecodeError as exc:
        src.add(exc.lineno, None, f"bad JSON: {exc.msg} (column {exc.colno})")
    return None


def looks_like_harmbench(data: Any) -> bool:
    """A JSON object of lists of objects with a `generation`."""
    if not isinstance(data, dict) or not data:
        return False
    items = [item for value in data.values() if isinstance(value, list) for item in value]
    return bool(items) and all(isinstance(item, dict) and "generation" in item for item in items)


def _entries(src: Source, data: Any) -> list[tuple[str, int, dict[str, Any]]]:
    """(behavior id, list position, item) for every well-shaped item; the others are problems."""
    if not isinstance(data, dict):
        src.add(None, None, "expected a JSON object keyed by behavior id")
        return []
    entries = []
    for behavior, items in data.items():
        if not isinstance(items, list):
            src.add(None, behavior, "expected a list of test cases")
            continue
        for index, item in enumerate(items):
            if isinstance(item, dict):
                entries.append((behavior, index, item))
            else:
                src.add(None, f"{behavior}[{index}]", "expected a JSON object")
    return entries


def _test_case(src: Source, where: str, value: Any) -> tuple[str | None, str | None]:
    """(query text, image path as written): a string, or [image path, text] in the multimodal set."""
    if isinstance(value, str) and value.strip():
        return value, None
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) and v.strip() for v in value):
        return value[1], value[0]
    src.add(None, f"{where}.test_case", "expected a non-empty string or [image path, text]")
    return None, None


def read_harmbench(src: Source, judges: JudgeChoice, images_dir: Path | None) -> LabelSet | None:
    data = load_json(src)
    if src.problems:
        return None
    entries = _entries(src, data)
    if not entries and not src.problems:
        src.add(None, None, "no test cases")
    keys = list(dict.fromkeys(key for _, _, item in entries for key in item))
    annotators = sorted((k for k in keys if HUMAN.match(k)), key=lambda k: int(k.split("_")[1]))
    candidates = [k for k in keys if k not in NOT_JUDGES and k not in annotators]
    names = judges.select(src, candidates, None)
    stored = read_stored(names, [item for _, _, item in entries], read_harmbench_stored)
    image_root = images_dir or src.path.parent  # HarmBench's image paths are file names in its image folder
    pairs: list[LabelledPair] = []
    missing_images: list[str] = []
    for number, ((behavior, index, item), labels) in enumerate(zip(entries, stored.labels, strict=True), 1):
        where = f"{behavior}[{index}]"
        before = len(src.problems)
        query, image = _test_case(src, where, item.get("test_case"))
        generation = item.get("generation")
        if not isinstance(generation, str):
            src.add(None, f"{where}.generation", "expected a string")
        human = [
            human_label(src, None, f"{where}.{a}", item.get(a), read_zero_one, "0 or 1") for a in annotators
        ]
        category = item.get("category")
        if category is not None and not isinstance(category, str):
            src.add(None, f"{where}.category", "expected a string")
        image_path = None
        if image is not None:
            full = (image_root / image).absolute()
            problem = image_problem(full)
            if problem is None:
                image_path = str(full)
            elif full.exists():  # there but unreadable: a broken file, not a set without images
                src.add(None, f"{where}.test_case", problem)
            else:
                missing_images.append(image)
        if len(src.problems) > before:
            continue
        assert query is not None and isinstance(generation, str)
        pairs.append(
            LabelledPair(
                id=f"{behavior}/{index}",
                query=query,
                response=generation,
                image=image_path,
                category=category or None,  # the behavior id is not a category
                human=human,
                reference=majority(human),
                stored=labels,
                row=number,
            )
        )
    notes = list(stored.notes)
    if missing_images:
        notes.append(
            f"{len(missing_images)} image(s) not found in {image_root} (e.g. {missing_images[0]}): "
            "those pairs are judged on their text alone"
        )
    return stored.label_set(src, "harmbench", pairs, annotators, notes)

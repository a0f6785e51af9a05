"""Image conditions: which image the target (and so the jury) is shown in the `image` modality, for the
paper's image ablation (refined image vs blank, noise, an unrelated image or the unrefined attempt).

- `dataset`: the item's own image (no file is made); `none`: no image at all (text only);
- `black` / `white`: a solid image the size of the item's image;
- `noise`: uniform RGB noise of that size, seeded by (seed, item id): the same per item in every run;
- `random`: another item's image, never one byte-identical to the item's own (compared by sha256),
  chosen by a generator seeded by (seed, item id), so independent of `--limit` and item order;
- `first-attempt`: the first rendered attempt, before the critic's refinement, as `safebench generate`
  keeps it in `metadata.image_provenance` (round 1).

Every condition image is a PNG under `RUN_DIR/conditions/<condition>/`, written by `prepare_images`
before any model call; `condition_image` finds it again when a case is built. Seeds are derived with
sha256 (Python's `hash()` differs between processes). Items without an image stay text-only.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import get_args

from PIL import Image

from safebench.config import ConfigError, ImageCondition
from safebench.dataset import Dataset
from safebench.dataset.io import sha256_file
from safebench.schema import Item, MediaRef

CONDITIONS = get_args(ImageCondition)
CONDITIONS_DIR = "conditions"  # under the run directory
# The seed when the run sets none: fixed, so `noise` and `random` are the same in every run.
DEFAULT_SEED = 0
PROVENANCE_KEY = "image_provenance"  # safebench.generation.pipeline.to_item
_UNSAFE_CHARS = re.compile(r"[^a-z0-9._-]+")


class ConditionError(ConfigError):
    """The dataset cannot give this condition (one line naming the item); nothing was started."""


def run_seed(config: object) -> int:
    """The run's `seed` setting when its config (a RunConfig or a saved dict) has one, else DEFAULT_SEED."""
    seed = config.get("seed") if isinstance(config, dict) else getattr(config, "seed", None)
    return seed if isinstance(seed, int) else DEFAULT_SEED


def condition_path(out_dir: Path, condition: str, item_id: str) -> Path:
    """`RUN_DIR/conditions/<condition>/<item>.png`; the id is made a safe, case-unique file name."""
    stem = _UNSAFE_CHARS.sub("_", item_id.lower()).strip("._")[:80] or "item"
    if stem != item_id:  # changed (case, characters): a short hash keeps two such ids apart
        stem += "-" + hashlib.sha256(item_id.encode("utf-8")).hexdigest()[:8]
    return Path(out_dir) / CONDITIONS_DIR / condition / f"{stem}.png"


def record_path(path: str | Path) -> str:
    """How a record names a condition image: relative to the run directory."""
    return Path(*Path(path).parts[-3:]).as_posix()


def _derived_seed(seed: int, condition: str, item_id: str) -> int:
    digest = hashlib.sha256(f"{seed}\x1f{condition}\x1f{item_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _size(dataset: Dataset, item: Item) -> tuple[int, int]:
    assert item.image is not None
    with Image.open(dataset.root / item.image) as image:
        return image.size


def _sha(dataset: Dataset, item: Item) -> str:
    assert item.image is not None
    return item.image_sha256 or sha256_file(dataset.root / item.image)


def first_attempt(item: Item) -> str | None:
    """The dataset-relative path of the item's first rendered attempt, when its provenance keeps one."""
    attempts = item.metadata.get(PROVENANCE_KEY)
    if not isinstance(attempts, list):
        return None
    rounds = [a for a in attempts if isinstance(a, dict) and isinstance(a.get("path"), str)]
    if not rounds:
        return None
    return str(min(rounds, key=lambda a: a.get("round", 0))["path"])


def check(items: Iterable[Item], dataset: Dataset, condition: str) -> None:
    """ConditionError (one line) if the dataset cannot give `condition` for `items`. Reads no image."""
    items = [i for i in items if i.image]
    if condition == "random":
        distinct = {_sha(dataset, i) for i in dataset.items if i.image}
        if len(distinct) < 2:
            raise ConditionError(
                f"--image-condition random needs at least 2 distinct images in {dataset.root} "
                f"(it has {len(distinct)})"
            )
    elif condition == "first-attempt":
        for item in items:
            path = first_attempt(item)
            if path is None:
                raise ConditionError(
                    f"item {item.id}: the dataset keeps no first image attempt (metadata.{PROVENANCE_KEY}); "
                    "--image-condition first-attempt needs a dataset made by `safebench generate`"
                )
            if not (dataset.root / path).is_file():
                raise ConditionError(
                    f"item {item.id}: first image attempt {path} not found in {dataset.root}"
                )


def _random_source(item: Item, dataset: Dataset, seed: int) -> Item:
    own = _sha(dataset, item)
    # One candidate per distinct image, in dataset order, so the draw does not favour duplicated images.
    candidates: dict[str, Item] = {}
    for other in dataset.items:
        if other.image and other.id != item.id:
            candidates.setdefault(_sha(dataset, other), other)
    candidates.pop(own, None)
    if not candidates:
        raise ConditionError(f"item {item.id}: --image-condition random found no other distinct image")
    choices = list(candidates.values())
    return choices[random.Random(_derived_seed(seed, "random", item.id)).randrange(len(choices))]


def _write_png(image: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")  # renamed into place: never half a file
    image.save(partial, "PNG")
    os.replace(partial, path)


def _copy_png(source: Path, path: Path) -> None:
    """The source as a PNG: its bytes when it is one (same checksum as the dataset's file)."""
    with Image.open(source) as image:
        if image.format == "PNG":
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(path.name + ".partial")
            shutil.copyfile(source, partial)
            os.replace(partial, path)
        else:
            _write_png(image.convert("RGB"), path)


def _make(item: Item, dataset: Dataset, condition: str, seed: int, path: Path) -> None:
    if condition in ("black", "white"):
        _write_png(
            Image.new("RGB", _size(dataset, item), (0, 0, 0) if condition == "black" else (255,) * 3), path
        )
    elif condition == "noise":
        width, height = _size(dataset, item)
        rng = random.Random(_derived_seed(seed, "noise", item.id))
        _write_png(Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3)), path)
    elif condition == "random":
        source = _random_source(item, dataset, seed)
        assert source.image is not None
        _copy_png(dataset.root / source.image, path)
    elif condition == "first-attempt":
        check([item], dataset, condition)
        attempt = first_attempt(item)
        assert attempt is not None
        _copy_png(dataset.root / attempt, path)
    else:
        raise ConditionError(f"unknown image condition {condition!r} (choose: {', '.join(CONDITIONS)})")


def condition_image(
    item: Item, dataset: Dataset, condition: str, seed: int, out_dir: Path | None
) -> Path | None:
    """The image shown for `item` under `condition`: the dataset's file (`dataset`), None (`none`, or an
    item without an image), else the condition's PNG under `out_dir` (the run directory), made if not
    there yet."""
    if condition == "none" or not item.image:
        return None
    if condition == "dataset":
        return (dataset.root / item.image).resolve()
    if out_dir is None:
        raise ValueError(f"image condition {condition!r} needs the run directory to write its images to")
    path = condition_path(out_dir, condition, item.id)
    if not path.is_file():  # deterministic: a file left by an earlier session is the same image
        _make(item, dataset, condition, seed, path)
    return path.resolve()


def prepare_images(
    items: Iterable[Item], dataset: Dataset, condition: str, seed: int, out_dir: Path
) -> dict[str, Path | None]:
    """Check the dataset, then make every condition image of `items` (before any model call):
    `{item id: image shown}`. ConditionError when the dataset cannot give the condition."""
    items = list(items)
    check(items, dataset, condition)
    return {item.id: condition_image(item, dataset, condition, seed, out_dir) for item in items}


def shown_ref(item: Item, shown: str | None, condition: str | None) -> MediaRef | None:
    """The record's `image`: the file the target and the jury were shown, with its checksum; the
    dataset's path for `dataset`, else the condition PNG's path relative to the run directory."""
    if not shown:
        return None
    if condition in (None, "dataset"):
        return MediaRef(path=item.image, sha256=item.image_sha256) if item.image else None
    return MediaRef(path=record_path(shown), sha256=sha256_file(shown))

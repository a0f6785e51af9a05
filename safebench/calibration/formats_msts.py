"""The MSTS response-annotation CSV, with an optional stored-judges CSV (see formats.py for the rules)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from safebench.calibration.formats_common import (
    JudgeChoice,
    Source,
    StoredJudges,
    cell,
    human_label,
    image_problem,
    majority,
    read_msts,
    read_rows_with,
    read_stored,
    read_table,
)
from safebench.calibration.labels import LabelledPair, LabelSet

ANNOTATORS = ("annot1_label", "annot2_label")
REFERENCE = "final_label"
REQUIRED = ("case_id", "prompt_text", "unsafe_image_description", "model", "response", *ANNOTATORS, REFERENCE)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")  # tried in this order: <images_dir>/<case_id><suffix>
ANNOTATOR_CODES = '1.x safe or 2.x unsafe, e.g. "1.1 - rejection or rebuttal"'
FINAL_CODES = '"1 - safe" or "2 - unsafe"'


def unique_ids(cases: list[str], models: list[str]) -> list[str]:
    """`case_id` when it occurs once; `case_id/model` for a case answered by several models; a further
    `#2`, `#3`... (in file order) if even that repeats."""
    repeated = Counter(cases)
    ids = [c if repeated[c] == 1 else f"{c}/{m}" for c, m in zip(cases, models, strict=True)]
    seen: Counter[str] = Counter()
    out = []
    for item_id in ids:
        seen[item_id] += 1
        out.append(item_id if seen[item_id] == 1 else f"{item_id}#{seen[item_id]}")
    return out


def find_image(images_dir: Path, case_id: str) -> Path | None:
    for suffix in IMAGE_SUFFIXES:
        candidate = images_dir / f"{case_id}{suffix}"
        if candidate.is_file():
            return candidate.absolute()
    return None


def _judges_csv(src: Source, judges_path: Path, rows: int) -> StoredJudges | None:
    """The stored-judges CSV: a header of judge names, one row per MSTS row, values safe/unsafe."""
    table = read_table(src, judges_path)
    if table is None:
        return None
    names, judge_rows = table
    if len(judge_rows) != rows:
        src.add(
            None,
            None,
            f"stored judges {judges_path} has {len(judge_rows)} data row(s) but {src.path} has {rows}: "
            "the two files must be aligned row by row",
        )
        return None
    return read_stored(names, [row.values for row in judge_rows], read_msts)


def read_msts_file(src: Source, judges: JudgeChoice, images_dir: Path | None) -> LabelSet | None:
    table = read_rows_with(src, REQUIRED)
    if table is None:
        return None
    _, rows = table
    judges.select(src, [], 1)  # names: MSTS files hold no judge columns, so any name is unknown
    stored = StoredJudges([], [{} for _ in rows], {}, [])
    if judges.csv is not None:
        stored = _judges_csv(src, judges.csv, len(rows)) or stored
    ids = unique_ids(
        [cell(r.values, "case_id") or "" for r in rows], [cell(r.values, "model") or "" for r in rows]
    )
    pairs: list[LabelledPair] = []
    without_image = 0
    for row, item_id, labels in zip(rows, ids, stored.labels, strict=True):
        before = len(src.problems)
        values = row.values
        for column in ("case_id", "prompt_text", "model"):
            if cell(values, column) is None:
                src.add(row.line, column, "missing value")
        human = [
            human_label(src, row.line, a, cell(values, a), read_msts, ANNOTATOR_CODES) for a in ANNOTATORS
        ]
        reference = human_label(src, row.line, REFERENCE, cell(values, REFERENCE), read_msts, FINAL_CODES)
        if len(src.problems) > before:
            continue
        image = find_image(images_dir, cell(values, "case_id")) if images_dir is not None else None
        if image is not None and (problem := image_problem(image)):
            src.add(row.line, "case_id", problem)
            continue
        without_image += image is None
        pairs.append(
            LabelledPair(
                id=item_id,
                query=cell(values, "prompt_text"),
                response=values.get("response") or "",
                image=None if image is None else str(image),
                # the image's meaning is the test: without the image, jurors read what it shows
                image_description=None if image is not None else cell(values, "unsafe_image_description"),
                human=human,
                reference=majority(human) if reference is None else reference,
                stored=labels,
                row=row.index,
            )
        )
    notes = list(stored.notes)
    if images_dir is None:
        notes.append(
            "images not supplied (no images_dir): jurors get the image descriptions instead of images"
        )
    elif without_image:
        notes.append(
            f"{without_image} pair(s) have no image in {images_dir} (looked for <case_id>"
            f"{'|'.join(IMAGE_SUFFIXES)}): jurors get those images' descriptions instead"
        )
    return stored.label_set(src, "msts", pairs, list(ANNOTATORS), notes)
